. /work/main/.venv/bin/activate
for r in 1 2 3; do
  for tree in /tmp/wt-head /work/main; do
    cd $tree && PYTHONPATH=$tree OMP_NUM_THREADS=1 taskset -c 1 python -m pyg_mspipe train --recipe dyglib --negatives random --epochs 2 --threads 1 -q --json /tmp/isel.json >/dev/null 2>&1
    python -c "import json; d=json.load(open('/tmp/isel.json')); e=d['epochs']; print('$r $tree', [round(x['events_per_second']) for x in e], json.dumps(e[-1])[:300])"
  done
done
