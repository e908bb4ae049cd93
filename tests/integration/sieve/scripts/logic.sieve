# allof/anyof/not, exists, address parts, string tests
require ["fileinto", "variables"];
if allof (exists ["From", "Subject"], not exists "X-Nothing-Here",
          anyof (address :is :all "to" "zzz@example.org", header :contains "subject" ["re:", "fwd:"])) {
    fileinto "Replies";
}
if address :matches :domain "from" "*.ie" { fileinto "Ireland"; }
if not header :matches "message-id" "<*@*>" { fileinto "OddIds"; }
set "s" "x";
if string :is "${s}" "x" { keep; }
