# lists into folders by List-Id, else by a [tag] in the subject
require ["fileinto", "variables"];
if header :matches "List-Id" "*<*@*>" { set :lower "l" "${2}"; fileinto "Lists.${l}"; stop; }
if header :matches "List-Id" "*<*.*>" { set :lower "l" "${2}"; fileinto "Lists.${l}"; stop; }
if header :matches "subject" "*[*]*" { set :lower "t" "${2}"; fileinto "Tag.${t}"; }
