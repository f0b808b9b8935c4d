cd /work/main && . .venv/bin/activate
for r in 1 2 3 4 5; do
  for mode in tuned off; do
   if [ $mode = off ]; then E="GLIBC_TUNABLES="; else E="X=1"; fi
   env $E OMP_NUM_THREADS=1 taskset -c 1 python -m pyg_mspipe train --recipe pyg --negatives random --epochs 2 --threads 1 -q --json /tmp/ab.json >/dev/null 2>&1
   python -c "import json; d=json.load(open('/tmp/ab.json')); print('$r pyg $mode', [round(e['events_per_second']) for e in d['epochs']])"
  done
done
