#!/usr/bin/python3
"""Spam benchmark: mailkeep's filter, bogofilter and SpamProbe on the same
folds of a ham/ spam/ corpus (run by tests/bench/spam/run.sh).

Held-out set: a file whose name's FNV-1a 64-bit hash is 0 mod 5 (about 20%)
is held out. Nothing was tuned on it (tests/bench/spam/spamtune.c never reads
it unless asked to, once, at the end); it is scored once, by every tool
trained on the whole tuning part, and reported apart.

Cross-validation on the tuning part (the other 80%): within each class the
files are sorted by name and file i goes to fold i mod 5, so every run and
every tool sees the same folds. For each fold each tool learns the other 4
folds (every message, in one fixed shuffled order) and scores the fold.
Pooled over the folds:
  FP     ham scored spam at the tool's own default cut-off
  FN     spam scored ham at that cut-off
  FN@FP  the fewest misses with any cut-off that keeps false positives at or
         below 0.2% of the ham (the issue's bar)
  1-AUC% from the scores (ties count half)
  cls/s  messages classified per second (scoring only, one process)
  lrn/s  messages learned per second (one process)
  bytes  the database after learning: mailkeep's token table (keys, values,
         node headers) and its store file; bogofilter's and SpamProbe's files

Environment: SPAM_BENCH_LIMIT=N (first N files per class), SPAM_BENCH_FOLDS,
SPAM_BENCH_PEERS=0 (mailkeep alone), SPAM_BENCH_JOBS (parallel folds),
SPAM_BENCH_HELDOUT=0 (no held-out run), SPAM_BENCH_GROWTH=N (also learn N
perturbed copies of the corpus and print the sizes on the way).
"""
import bisect, os, random, subprocess, sys, time, concurrent.futures as cf

corpus, work, spambench, here = sys.argv[1:5]
K = 5
limit = int(os.environ.get('SPAM_BENCH_LIMIT', '0'))
run_folds = [int(x) for x in os.environ.get('SPAM_BENCH_FOLDS', '0 1 2 3 4').split()]
peers = os.environ.get('SPAM_BENCH_PEERS', '1') != '0'
heldout = os.environ.get('SPAM_BENCH_HELDOUT', '1') != '0'
growth = int(os.environ.get('SPAM_BENCH_GROWTH', '0'))
FPMAX = 0.002


def fnv1a(s):
    h = 1469598103934665603
    for b in s.encode():
        h = ((h ^ b) * 1099511628211) & 0xffffffffffffffff
    return h


def files(cls):
    d = os.path.join(corpus, cls)
    names = sorted(os.listdir(d))
    if limit:
        names = names[:limit]
    return [(cls, os.path.join(d, n), fnv1a(n) % 5 == 0) for n in names]


items = files('ham') + files('spam')
held = [(c, p) for c, p, h in items if h]
folds = [[] for _ in range(K)]
for cls in ('ham', 'spam'):
    for i, (c, p, h) in enumerate([x for x in items if x[0] == cls and not x[2]]):
        folds[i % K].append((c, p))


def write_list(path, its):
    with open(path, 'w') as f:
        for c, p in its:
            f.write(f'{c} {p}\n')


def run(cmd, out=None, ok=(0,)):
    t = time.monotonic()
    with open(out, 'w') if out else open(os.devnull, 'w') as o:
        r = subprocess.run(cmd, stdout=o, stderr=subprocess.PIPE, text=True)
    if r.returncode not in ok:
        sys.exit(f'{cmd[0]} failed: {r.stderr[-2000:]}')
    return time.monotonic() - t, r.stderr


def du(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def rows_of(path, pathcol, scorecol, verdictcol, spamword):
    rows = []
    for line in open(path):
        f = line.split()
        if len(f) <= max(scorecol, verdictcol):
            continue
        p = f[pathcol]
        rows.append(('spam' if '/spam/' in p else 'ham', float(f[scorecol]), f[verdictcol] == spamword))
    return rows


def job(name, train, test):
    """Every tool learns train and scores test; returns {tool: (rows, cls/s, lrn/s, bytes)}."""
    fd = os.path.join(work, name)
    os.makedirs(fd, exist_ok=True)
    write_list(f'{fd}/train', train)
    write_list(f'{fd}/test', test)
    res = {}
    st = f'{fd}/mk'
    _, err = run([spambench, st, f'{fd}/train', f'{fd}/test', 'chi-square', 'osb4'], f'{fd}/mk.out')
    lines = err.splitlines()
    cls_rate = float([l for l in lines if 'classifying took' in l][-1].split('(')[-1].split('/s')[0])
    lrn_rate = float([l for l in lines if 'training took' in l][-1].split('(')[-1].split('/s')[0])
    size = [l for l in lines if 'after training' in l][-1]
    table = int(size.split('table ')[1].split()[0])
    sfile = int(size.split('store file ')[1].split()[0])
    # spambench: path probability verdict score
    res['mailkeep'] = (rows_of(f'{fd}/mk.out', 0, 3, 2, '1'), cls_rate, lrn_rate, (table, sfile))
    subprocess.run(['rm', '-rf', st])
    if not peers:
        return res
    # bogofilter: bulk registration, then terse scores (CPU time of the child)
    bd = f'{fd}/bogo'
    os.makedirs(bd, exist_ok=True)
    r0 = os.times()
    for cls, flag in (('spam', '-s'), ('ham', '-n')):
        paths = [p for c, p in train if c == cls]
        for i in range(0, len(paths), 500):
            run(['bogofilter', '-d', bd, flag, '-B'] + paths[i:i + 500])
    r1 = os.times()
    run(['bogofilter', '-d', bd, '-T', '-B'] + [p for c, p in test], f'{fd}/bogo.out', ok=(0, 1, 2))
    r2 = os.times()
    cpu = lambda a, b: (b.children_user - a.children_user) + (b.children_system - a.children_system)
    res['bogofilter'] = (rows_of(f'{fd}/bogo.out', 0, 2, 1, 'S'), len(test) / cpu(r1, r2),
                         len(train) / cpu(r0, r1), (du(bd), du(bd)))
    subprocess.run(['rm', '-rf', bd])
    # SpamProbe: -M one message per file; score prints "SPAM|GOOD score md5" per file, in order
    sd = f'{fd}/sp'
    r0 = os.times()
    for cls, cmd in (('spam', 'spam'), ('ham', 'good')):
        paths = [p for c, p in train if c == cls]
        for i in range(0, len(paths), 500):
            run(['spamprobe', '-c', '-d', sd, '-M', cmd] + paths[i:i + 500])
    r1 = os.times()
    run(['spamprobe', '-d', sd, '-M', 'score'] + [p for c, p in test], f'{fd}/sp.raw')
    r2 = os.times()
    with open(f'{fd}/sp.raw') as f, open(f'{fd}/sp.out', 'w') as o:
        for (c, p), line in zip(test, f):
            v, s = line.split()[:2]
            o.write(f'{p} {s} {v}\n')
    res['SpamProbe'] = (rows_of(f'{fd}/sp.out', 0, 1, 2, 'SPAM'), len(test) / cpu(r1, r2),
                        len(train) / cpu(r0, r1), (du(sd), du(sd)))
    subprocess.run(['rm', '-rf', sd])
    return res


def fold_job(k):
    train = [it for j in range(K) if j != k for it in folds[j]]
    random.Random(k).shuffle(train)
    r = job(f'fold{k}', train, folds[k])
    print(f'spam bench: fold {k} done', file=sys.stderr, flush=True)
    return r


def summarize(results):
    tools = list(results[0].keys())
    out = {}
    for tool in tools:
        rows = [r for res in results for r in res[tool][0]]
        ham = sorted(r[1] for r in rows if r[0] == 'ham')
        spam = [r[1] for r in rows if r[0] == 'spam']
        fp = sum(1 for r in rows if r[0] == 'ham' and r[2])
        fn = sum(1 for r in rows if r[0] == 'spam' and not r[2])
        wins = sum(bisect.bisect_left(ham, s) + 0.5 * (bisect.bisect_right(ham, s) - bisect.bisect_left(ham, s))
                   for s in spam)
        auc = wins / (len(ham) * len(spam))
        k = int(FPMAX * len(ham))  # false positives allowed
        cut = sorted(ham, reverse=True)[k] if k < len(ham) else float('-inf')
        fnat = sum(1 for s in spam if not s > cut)
        n = len(results)
        out[tool] = dict(nham=len(ham), nspam=len(spam), fp=fp, fn=fn, fnat=fnat, k=k, auc=1 - auc,
                         cls=[res[tool][1] for res in results], lrn=[res[tool][2] for res in results],
                         table=sum(res[tool][3][0] for res in results) // n,
                         file=sum(res[tool][3][1] for res in results) // n)
    return out


def med(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def table(title, s):
    t0 = next(iter(s.values()))
    print(f"{title}: {t0['nham']} ham, {t0['nspam']} spam")
    print(f"{'tool':11} {'FP':>9} {'FN':>9} {'FN@FP<=' + str(t0['k']):>13} {'1-AUC%':>7} {'cls/s':>7} "
          f"{'lrn/s':>7} {'table MB':>8} {'file MB':>8}")
    for tool, x in s.items():
        print(f"{tool:11} {x['fp']:4d} {100 * x['fp'] / x['nham']:4.2f}% {x['fn']:4d} {100 * x['fn'] / x['nspam']:4.2f}% "
              f"{x['fnat']:6d} {100 * x['fnat'] / x['nspam']:5.2f}% {100 * x['auc']:7.4f} {med(x['cls']):7.1f} "
              f"{med(x['lrn']):7.1f} {x['table'] / 1e6:8.1f} {x['file'] / 1e6:8.1f}")
    mk = s.get('mailkeep')
    for peer in [t for t in s if t != 'mailkeep']:
        b = s[peer]
        r = lambda x, y: f"{x / y:.2f}" if y else ('=' if x == y else 'inf')
        cls = [a / c for a, c in zip(mk['cls'], b['cls'])]
        lrn = [a / c for a, c in zip(mk['lrn'], b['lrn'])]
        print(f"ratio mailkeep / {peer}: FP {r(mk['fp'], b['fp'])}, FN {r(mk['fn'], b['fn'])}, "
              f"FN@FP {r(mk['fnat'], b['fnat'])}, 1-AUC {r(mk['auc'], b['auc'])}, "
              f"cls/s median {med(cls):.2f} (min {min(cls):.2f} max {max(cls):.2f}, {len(cls)} runs), "
              f"lrn/s median {med(lrn):.2f} (min {min(lrn):.2f} max {max(lrn):.2f}), "
              f"file {r(mk['file'], b['file'])}")


t0 = time.monotonic()
with cf.ThreadPoolExecutor(max_workers=int(os.environ.get('SPAM_BENCH_JOBS', '1'))) as ex:
    results = list(ex.map(fold_job, run_folds))
print(f"spam: corpus {corpus}; held out by FNV-1a(name) % 5 == 0: {len(held)} messages, "
      f"tuning part {sum(len(f) for f in folds)}; {time.monotonic() - t0:.0f}s")
table(f'cross-validation ({len(run_folds)} of {K} folds of the tuning part)', summarize(results))
if heldout:
    train = [it for f in folds for it in f]
    random.Random(99).shuffle(train)
    table('held-out (trained on the whole tuning part, scored once)', summarize([job('held', train, held)]))
if growth:
    lst = os.path.join(work, 'all')
    write_list(lst, [(c, p) for c, p, h in items])
    print(f'growth: {growth} perturbed copies learned (spambench --growth)')
    _, err = run([spambench, '--growth', os.path.join(work, 'growth'), str(growth), lst])
    for l in err.splitlines():
        print('  ' + l.replace('spambench: ', ''))
