#!/bin/sh
# LDAP directory benchmark (see bench.py): a burst of lookups against a real
# slapd, mailkeep's cache against one search per lookup (the seed's way).
exec /usr/bin/python3 "$(dirname "$0")/bench.py"
