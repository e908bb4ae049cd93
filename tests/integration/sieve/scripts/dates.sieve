# by the year of the Date field, in UTC
require ["fileinto", "date", "relational", "variables"];
if date :zone "+0000" :matches "date" "year" "*" { set "y" "${1}"; }
if date :zone "+0000" :value "lt" "date" "date" "2002-09-01" { fileinto "Before.${y}"; stop; }
if currentdate :zone "+0000" :value "ge" "year" "2000" { fileinto "Year.${y}"; }
