# spam by SpamAssassin's headers, as people had it before a filter of their own
require ["fileinto", "regex", "relational", "comparator-i;ascii-numeric", "variables"];
if header :contains "X-Spam-Flag" "YES" { fileinto "Junk"; stop; }
if header :regex "X-Spam-Status" "hits=(-?[0-9]+)" {
    if string :value "ge" :comparator "i;ascii-numeric" "${1}" "5" { fileinto "Junk"; stop; }
}
if header :regex :comparator "i;octet" "subject" "^(ADV|\\[SPAM\\])" { fileinto "Junk"; stop; }
