# encoded subjects (RFC 2047), address parts of messy From and To fields
require ["fileinto", "variables", "relational", "comparator-i;ascii-numeric"];
if header :matches "subject" "*" { set "s" "${1}"; }
if string :contains "${s}" ["=?", "?="] { fileinto "Undecoded"; }
if address :domain :matches "from" "*.*" { set :lower "d" "${2}"; }
if string :is "${d}" ["com", "net", "org", "ie"] { fileinto "Tld.${d}"; }
if address :count "ge" :comparator "i;ascii-numeric" ["to", "cc"] "2" { fileinto "Many"; }
if address :all :is "to" "" { fileinto "NoTo"; }
