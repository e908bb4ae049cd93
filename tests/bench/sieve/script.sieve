# A filter as Roundcube's editor writes them: a dozen rules, most mail
# matches none and is kept in INBOX after every test has run.
require ["fileinto", "variables", "envelope", "subaddress", "regex", "imap4flags", "mailbox",
         "relational", "comparator-i;ascii-numeric", "date"];
# rule:[lists by List-Id]
if header :matches "List-Id" "*<*.*>" { fileinto :create "Lists.${2}"; stop; }
# rule:[lists by sender]
if address :is :domain "from" ["lists.example.net", "googlegroups.com", "vger.kernel.org"] { fileinto "Lists"; stop; }
# rule:[spam by subject]
if header :contains "subject" ["[SPAM]", "***SPAM***"] { fileinto "Junk"; stop; }
# rule:[spam by score]
if header :regex "X-Spam-Score" "^([5-9]\\.|[1-9][0-9])" { fileinto "Junk"; stop; }
# rule:[shopping]
if envelope :detail "to" "shop" { fileinto :create "Shopping"; stop; }
# rule:[boss]
if address :is "from" ["boss@example.com", "ceo@example.com"] { addflag "\\Flagged"; }
# rule:[team]
if header :contains ["to", "cc"] "team@example.org" { fileinto "Team"; stop; }
# rule:[invoices]
if allof (header :contains "subject" "invoice", address :domain "from" "billing.example.com") { fileinto "Invoices"; stop; }
# rule:[low priority]
if header :value "ge" :comparator "i;ascii-numeric" "X-Priority" "4" { fileinto "Low"; stop; }
# rule:[old]
if date :value "lt" :originalzone "date" "year" "2000" { fileinto "Old"; stop; }
# rule:[newsletters]
if exists "X-Newsletter" { fileinto "Newsletters"; stop; }
# rule:[big]
if size :over 10M { fileinto "Big"; stop; }
