# words in the text, big messages, many hops
require ["fileinto", "body", "relational", "comparator-i;ascii-numeric"];
if body :text :contains ["unsubscribe", "opt-out", "remove me"] { fileinto "Bulk"; stop; }
if body :raw :contains "Content-Type: application/" { fileinto "Attachments"; }
if size :over 20K { fileinto "Big"; }
if header :count "ge" :comparator "i;ascii-numeric" "received" "6" { fileinto "ManyHops"; }
