# plus-address filing, flags by sender, the rest kept with a flag
require ["envelope", "subaddress", "fileinto", "imap4flags", "variables", "copy"];
if envelope :detail :matches "to" "*" { fileinto "Plus.${1}"; }
if address :domain :is "from" ["example.com", "linux.ie", "spamassassin.taint.org"] {
    addflag "$Known";
    fileinto :copy :flags ["\\Seen", "$Archived"] "Archive";
}
if address :localpart :contains "from" ["admin", "root"] { addflag ["\\Flagged", "$Ops"]; }
