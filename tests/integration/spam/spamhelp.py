"""Helpers of the spam tests."""


def _value(v):
    try:
        return int(v)
    except ValueError:
        return v  # last_purge: a date or "never"


def spam_stats(inst, user):
    line = inst.mk("spam", "stats", "--user", user).stdout.split()
    return {line[i]: _value(line[i + 1]) for i in range(2, len(line), 2)}
