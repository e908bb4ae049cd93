#!/usr/bin/python3
"""Spam benchmark: mailkeep's filter, bogofilter and SpamAssassin's Bayes on
the same 5 folds of a ham/ spam/ corpus (run by tests/bench/spam/run.sh).

Folds: within each class the files are sorted by name and file i goes to fold
i mod 5, so every run and every tool sees the same folds. For each fold, each
tool learns the other 4 folds (every message, in one fixed shuffled order) and
scores the held-out fold. Pooled over the folds:
  FP   ham scored spam at the tool's own cutoff (hard-ham counted apart too)
  FN   spam scored ham at that cutoff
  FN@FP  the fewest false negatives each tool reaches with any cutoff that
       keeps its false positives at or below bogofilter's (same FP rate)
  1-AUC% from the scores
  msg/s  messages classified per second (scoring only, one process)

While working on the filter: SPAM_BENCH_FOLDS="0 3" runs only those folds,
SPAM_BENCH_PEERS=0 leaves bogofilter and SpamAssassin out (FN@FP then uses
SPAM_BENCH_FPMAX, default 1), SPAM_BENCH_SAVE=DIR keeps mailkeep's scores and
SPAM_BENCH_COMPARE=DIR compares them, bit for bit, with ones kept before.
"""
import os, random, shutil, subprocess, sys, time, concurrent.futures as cf

corpus, work, spambench, here = sys.argv[1:5]
K = 5
limit = int(os.environ.get('SPAM_BENCH_LIMIT', '0'))  # per class, 0 = all
variants = os.environ.get('SPAM_BENCH_VARIANTS', 'chi-square:sbph').split()
run_folds = [int(x) for x in os.environ.get('SPAM_BENCH_FOLDS', '0 1 2 3 4').split()]
peers = os.environ.get('SPAM_BENCH_PEERS', '1') != '0'
save_dir = os.environ.get('SPAM_BENCH_SAVE')
compare_dir = os.environ.get('SPAM_BENCH_COMPARE')

def files(cls):
    d = os.path.join(corpus, 'ham' if cls == 'ham' else 'spam')
    names = sorted(os.listdir(d))
    if limit:
        names = names[:limit]
    return [(cls, os.path.join(d, n)) for n in names]

items = files('ham') + files('spam')
folds = [[] for _ in range(K)]
for cls in ('ham', 'spam'):
    for i, it in enumerate([x for x in items if x[0] == cls]):
        folds[i % K].append(it)

def write_list(path, its):
    with open(path, 'w') as f:
        for c, p in its:
            f.write(f'{c} {p}\n')

def run(cmd, out=None, env=None, ok=(0,)):
    t = time.monotonic()
    with open(out, 'w') if out else open(os.devnull, 'w') as o:
        r = subprocess.run(cmd, stdout=o, stderr=subprocess.PIPE, text=True, env=env)
    if r.returncode not in ok:
        sys.exit(f'{cmd[0]} failed: {r.stderr[-2000:]}')
    return time.monotonic() - t, r.stderr

def fold_job(k):
    fd = os.path.join(work, f'fold{k}')
    os.makedirs(fd, exist_ok=True)
    train = [it for j in range(K) if j != k for it in folds[j]]
    random.Random(k).shuffle(train)
    test = folds[k]
    write_list(f'{fd}/train', train)
    write_list(f'{fd}/test', test)
    res = {}
    # mailkeep
    for v in variants:
        alg, tok = v.split(':')
        st = f'{fd}/mk-{alg}-{tok}'
        _, err = run([spambench, st, f'{fd}/train', f'{fd}/test', alg, tok], f'{fd}/mk-{v}.out')
        rate = float([l for l in err.splitlines() if 'classified' in l][-1].split('(')[-1].split('/s')[0])
        subprocess.run(['rm', '-rf', st])
        if save_dir:
            os.makedirs(save_dir, exist_ok=True)
            shutil.copy(f'{fd}/mk-{v}.out', os.path.join(save_dir, f'fold{k}-{v}.out'))
        res['mailkeep ' + v] = (parse(f'{fd}/mk-{v}.out', 1), rate)
    if not peers:
        print(f'spam bench: fold {k} done', file=sys.stderr, flush=True)
        return res
    # bogofilter: bulk registration, then terse scores
    bd = f'{fd}/bogo'
    os.makedirs(bd, exist_ok=True)
    for cls, flag in (('spam', '-s'), ('ham', '-n')):
        paths = [p for c, p in train if c == cls]
        for i in range(0, len(paths), 500):
            run(['bogofilter', '-d', bd, flag, '-B'] + paths[i:i + 500])
    t, _ = run(['bogofilter', '-d', bd, '-T', '-B'] + [p for c, p in test], f'{fd}/bogo.out', ok=(0, 1, 2))
    res['bogofilter'] = (parse(f'{fd}/bogo.out', 2, verdict=1), len(test) / t)
    subprocess.run(['rm', '-rf', bd])
    # SpamAssassin's Bayes, through its Perl API (what sa-learn and spamassassin run)
    sd = f'{fd}/sa'
    _, err = run(['perl', os.path.join(here, 'sabayes.pl'), sd, f'{fd}/train', f'{fd}/test'], f'{fd}/sa.out')
    rate = float(err.split('(')[-1].split('/s')[0])
    res['SpamAssassin Bayes'] = (parse(f'{fd}/sa.out', 1), rate)
    subprocess.run(['rm', '-rf', sd])
    print(f'spam bench: fold {k} done', file=sys.stderr, flush=True)
    return res

def parse(path, col, verdict=None):
    rows = []
    for line in open(path):
        f = line.split()
        if len(f) <= col:
            continue
        p = f[0]
        score = float(f[col])
        v = (f[verdict] == 'S') if verdict is not None else None
        rows.append(('spam' if '/spam/' in p else 'ham', 'hard-ham' in os.path.basename(p), score, v))
    return rows

CUTOFF = {'bogofilter': None, 'SpamAssassin Bayes': 0.9}  # None: bogofilter's own verdict
mk_cutoff = 0.9  # spam_threshold = 90

t0 = time.monotonic()
with cf.ThreadPoolExecutor(max_workers=int(os.environ.get('SPAM_BENCH_JOBS', '2'))) as ex:
    results = list(ex.map(fold_job, run_folds))
elapsed = time.monotonic() - t0

tools = list(results[0].keys())
summary = {}
for tool in tools:
    rows = [r for res in results for r in res[tool][0]]
    rate = sum(res[tool][1] for res in results) / K
    cut = CUTOFF.get(tool, mk_cutoff)
    is_spam = (lambda r: r[3]) if cut is None else (lambda r, c=cut: r[2] >= c)
    ham = [r for r in rows if r[0] == 'ham']
    spam = [r for r in rows if r[0] == 'spam']
    fp = sum(1 for r in ham if is_spam(r))
    hh = sum(1 for r in ham if r[1] and is_spam(r))
    fn = sum(1 for r in spam if not is_spam(r))
    hs = sorted(r[2] for r in ham)
    ss = [r[2] for r in spam]
    # AUC by ranks (ties count half)
    import bisect
    wins = sum(bisect.bisect_left(hs, s) + 0.5 * (bisect.bisect_right(hs, s) - bisect.bisect_left(hs, s)) for s in ss)
    auc = wins / (len(hs) * len(ss))
    summary[tool] = dict(rows=rows, fp=fp, hh=hh, fn=fn, auc=1 - auc, rate=rate, nham=len(ham), nspam=len(spam),
                         nhh=sum(1 for r in ham if r[1]))

def fn_at(tool, fpmax):
    rows = summary[tool]['rows']
    hs = sorted((r[2] for r in rows if r[0] == 'ham'), reverse=True)
    ss = [r[2] for r in rows if r[0] == 'spam']
    # cutoff just above the (fpmax+1)-th highest ham score
    c = (hs[fpmax] if fpmax < len(hs) else -1.0)
    return sum(1 for s in ss if not s > c)

bfp = summary['bogofilter']['fp'] if 'bogofilter' in summary else int(os.environ.get('SPAM_BENCH_FPMAX', '1'))
s0 = summary[tools[0]]
print(f"spam: corpus {corpus}: {s0['nham']} ham ({s0['nhh']} hard-ham), {s0['nspam']} spam, "
      f"{len(run_folds)} of {K} folds, {elapsed:.0f}s")
print(f"{'tool':28} {'FP':>4} {'hard':>4} {'FN':>4} {'FN@FP<=' + str(bfp):>9} {'1-AUC%':>8} {'msg/s':>7}")
for tool in tools:
    s = summary[tool]
    print(f"{tool:28} {s['fp']:4d} {s['hh']:4d} {s['fn']:4d} {fn_at(tool, bfp):9d} {100 * s['auc']:8.3f} {s['rate']:7.1f}")
mk = tools[0]
for peer in [t for t in ('bogofilter', 'SpamAssassin Bayes') if t in summary]:
    a, b = summary[mk], summary[peer]
    r = lambda x, y: f"{x / y:.2f}" if y else ('=' if x == y else 'inf')
    print(f"ratio {mk} / {peer}: FP {r(a['fp'], b['fp'])}, FN {r(a['fn'], b['fn'])}, "
          f"FN@FP {r(fn_at(mk, bfp), fn_at(peer, bfp))}, 1-AUC {r(a['auc'], b['auc'])}, msg/s {r(a['rate'], b['rate'])}")

if compare_dir:
    same = differ = 0
    for k in run_folds:
        for v in variants:
            old = os.path.join(compare_dir, f'fold{k}-{v}.out')
            new = os.path.join(work, f'fold{k}', f'mk-{v}.out')
            a = [l.split() for l in open(old)]
            b = [l.split() for l in open(new)]
            if len(a) != len(b):
                differ += max(len(a), len(b))
                continue
            for x, y in zip(a, b):
                # path, verdict and the exact probability (%a)
                if (x[0], x[2], x[-1]) == (y[0], y[2], y[-1]):
                    same += 1
                else:
                    differ += 1
                    if differ <= 10:
                        print(f"differs: {' '.join(x)} | {' '.join(y)}")
    print(f"compared with {compare_dir}: {same} identical, {differ} different")
    if differ:
        sys.exit(1)
