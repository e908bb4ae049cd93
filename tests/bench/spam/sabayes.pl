#!/usr/bin/perl
# sabayes.pl DBDIR TRAIN-LIST TEST-LIST: SpamAssassin's Bayes alone (no other rules).
use strict; use warnings;
use Mail::SpamAssassin;
use Time::HiRes qw(time);
my ($dir, $train, $test) = @ARGV;
mkdir $dir; mkdir "$dir/rules"; mkdir "$dir/site";
open my $pre, '>', "$dir/rules/init.pre" or die; print $pre "loadplugin Mail::SpamAssassin::Plugin::Check\nloadplugin Mail::SpamAssassin::Plugin::Bayes\n"; close $pre;
system("cp /usr/share/spamassassin/23_bayes.cf /usr/share/spamassassin/20_aux_tlds.cf $dir/rules/") == 0 or die;
my $sa = Mail::SpamAssassin->new({
  rules_filename => "$dir/rules", site_rules_filename => "$dir/site", userprefs_filename => "$dir/user_prefs",
  local_tests_only => 1, dont_copy_prefs => 1,
  post_config_text => "use_bayes 1\nbayes_auto_learn 0\nbayes_path $dir/bayes\nbayes_min_ham_num 1\nbayes_min_spam_num 1\nuse_bayes_rules 1\nlock_method flock\n",
});
$sa->init(1);
sub slurp { local $/; open my $f, '<', $_[0] or die "$_[0]: $!"; my $d = <$f>; return $d; }
my $t0 = time;
$sa->init_learner({caller_will_untie => 1});
open my $tl, '<', $train or die;
my $n = 0;
while (<$tl>) { chomp; my ($c, $p) = split / /, $_, 2;
  my $m = $sa->parse(slurp($p)); my $st = $sa->learn($m, undef, $c eq 'spam', 0); $st->finish; $m->finish; $n++; }
$sa->rebuild_learner_caches(); $sa->finish_learner();
my $t1 = time;
open my $xl, '<', $test or die; my $k = 0;
while (<$xl>) { chomp; my ($c, $p) = split / /, $_, 2;
  my $m = $sa->parse(slurp($p)); my $s = $sa->check($m);
  my $b = $s->get_tag('BAYES'); $b = 0.5 if !defined $b || $b eq '';
  print "$p $b\n"; $s->finish; $m->finish; $k++; }
my $t2 = time;
printf STDERR "sabayes: learned %d in %.1fs, classified %d in %.1fs (%.1f/s)\n", $n, $t1-$t0, $k, $t2-$t1, $k/($t2-$t1);
