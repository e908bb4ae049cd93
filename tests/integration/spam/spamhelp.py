"""Helpers of the spam tests."""

def spam_stats(inst, user):
    line = inst.mk("spam", "stats", "--user", user).stdout.split()
    return {line[i]: int(line[i + 1]) for i in range(2, len(line), 2)}
