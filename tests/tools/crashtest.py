#!/usr/bin/env python3
"""Kill/resume reliability check of bin/train: SIGKILL a run after its first checkpoint, rerun it.

  python3 -m tests.tools.crashtest                  # 10 tries, seed 0, temporary workdir removed at the end
  python3 -m tests.tools.crashtest --tries=3 --seed=7 --workdir=/tmp/crash --keep
  (or python3 tests/tools/crashtest.py ..., from anywhere)

Each try starts bin/train on the embedded shapes dataset with a tiny config
(configs/tiny.flags, --max_steps=40 --checkpoint_every=5 --log_every=1), waits for the first
checkpoint, then for a random step after it (plus a random fraction of a step), and kills the
whole process group with SIGKILL. It then reruns the SAME command to completion and checks, from
the files the runs wrote (checkpoints/, tb/, results.json), that:
  - the rerun resumed from the last checkpoint N written before the kill (the rerun's first
    TensorBoard step is N+1), not from step 0;
  - at most one --checkpoint_every interval was lost (last step logged by the killed run − N);
  - the run ended at the requested step (results.json "step") with an encoder export;
  - the train/loss curve of WORKDIR/tb (all event files) covers every step 0..max_steps, with
    duplicates only in the re-run interval N+1 .. last step of the killed run.
Prints one line per try and "n/N tries held"; exits 0 iff every try held (1 otherwise, 2 on
bad arguments). Every run has a timeout; no process outlives the script.
"""

import argparse
import collections
import itertools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if __package__ in (None, ""):  # run as a file: import this checkout's hsl_tf
    sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads (also inherited by bin/train)

from hsl_tf.host import quiet_native_stderr  # noqa: E402
from hsl_tf.rundir import event_files, resolve_record_path, scalar_events  # noqa: E402

with quiet_native_stderr():  # TensorFlow's C++ start-up lines
    import tensorflow as tf

TRAIN = os.path.join(ROOT, "bin", "train")
LOSS_TAG = "train/loss"


# ------------------------------------------------------------------------------- reading state

def loss_steps(files, tag=LOSS_TAG):
    """Steps at which ``tag`` was logged in the event files ``files``, in file order (repeats kept;
    a truncated last record, a killed writer, is skipped)."""
    return [s.step for s in scalar_events(files) if s.tag == tag]


def last_checkpoint(ckpt_dir):
    """Number N of the newest checkpoint in ``ckpt_dir`` (``ckpt-N``, N = the step), or None."""
    state = tf.train.get_checkpoint_state(ckpt_dir)
    if state is None or not state.model_checkpoint_path:
        return None
    return int(state.model_checkpoint_path.rsplit("-", 1)[1])


def _ranges(steps):
    """[1, 2, 3, 7, 8] -> "1..3, 7..8" (in the given order)."""
    out = []
    for _, run in itertools.groupby(enumerate(steps), lambda p: p[1] - p[0]):  # runs of consecutive steps
        run = [s for _, s in run]
        out.append(f"{run[0]}..{run[-1]}" if len(run) > 1 else f"{run[0]}")
    return ", ".join(out) or "none"


def judge_curve(killed_steps, rerun_steps, checkpoint, kill_step, max_steps):
    """Problems with the union of the train/loss steps of the killed run and of the rerun.

    Every step 0..max_steps must be there (step 0: the first batch's values, before its update);
    a step may repeat only in the re-run interval checkpoint+1 .. kill_step (logged by the killed
    run, then redone by the rerun).
    """
    problems = []
    if list(killed_steps) != list(range(0, kill_step + 1)):
        problems.append(f"the killed run logged steps {_ranges(killed_steps)}, not 0..{kill_step}")
    if list(rerun_steps) != list(range(checkpoint + 1, max_steps + 1)):
        problems.append(f"the rerun logged steps {_ranges(rerun_steps)}, not {checkpoint + 1}..{max_steps}")
    all_steps = list(killed_steps) + list(rerun_steps)
    wanted = set(range(0, max_steps + 1))
    missing = sorted(wanted - set(all_steps))
    extra = sorted(set(all_steps) - wanted)
    counts = collections.Counter(all_steps)
    bad_dups = sorted(s for s, c in counts.items()
                      if c > 2 or (c == 2 and not checkpoint < s <= kill_step))
    if missing:
        problems.append(f"TensorBoard misses steps {missing}")
    if extra:
        problems.append(f"TensorBoard has steps beyond 0..{max_steps}: {extra}")
    if bad_dups:
        problems.append(f"TensorBoard repeats steps {bad_dups} outside the re-run interval "
                        f"{checkpoint + 1}..{kill_step}")
    return problems


# ------------------------------------------------------------------------------------ processes

def train_command(workdir, max_steps=40, checkpoint_every=5):
    """The bin/train command of every run of a try (the first one and the rerun are identical)."""
    return [sys.executable, TRAIN, f"--flagfile={os.path.join(ROOT, 'configs', 'tiny.flags')}",
            f"--max_steps={max_steps}", "--epochs=1000",  # tiny.flags has 16 steps per epoch
            f"--checkpoint_every={checkpoint_every}", "--log_every=1", "--surrogate_every=0",
            "--verbose=1",  # its progress in killed.out / rerun.out, for whoever reads a failed try
            f"--workdir={workdir}"]


def _start(cmd, log_prefix):
    with open(log_prefix + ".out", "w") as out, open(log_prefix + ".err", "w") as err:
        return subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                env=dict(os.environ, PYTHONUNBUFFERED="1"), start_new_session=True, cwd=ROOT)


def _kill_group(proc):
    """SIGKILLs the process group of ``proc`` (its own session) and reaps it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:  # pragma: no cover
        pass


def _tail(path, n=3):
    try:
        with open(path, errors="replace") as f:
            lines = [l.strip() for l in f.read().splitlines() if l.strip()]
    except OSError:
        return ""
    return " | ".join(lines[-n:])


class TryFailed(Exception):
    pass


def _wait_for_checkpoint(proc, ckpt_dir, workdir, deadline, timeout, poll):
    while last_checkpoint(ckpt_dir) is None:
        if proc.poll() is not None:
            raise TryFailed(f"the first run exited (code {proc.returncode}) before its first checkpoint: "
                            f"{_tail(os.path.join(workdir, 'killed.err'))}")
        if time.monotonic() > deadline:
            raise TryFailed(f"no checkpoint after {timeout:.0f} s")
        time.sleep(poll)
    return last_checkpoint(ckpt_dir)


def _wait_for_step(proc, tb_dir, first, target, deadline, timeout, poll):
    """Waits until the run has logged step ``target``; returns the seconds per step seen."""
    seen, t_seen = first, time.monotonic()
    step_time = None
    while True:
        if proc.poll() is not None:
            raise TryFailed(f"the first run ended (code {proc.returncode}) before the kill at step {target}")
        if time.monotonic() > deadline:
            raise TryFailed(f"step {target} not reached after {timeout:.0f} s")
        now_seen = max(loss_steps(event_files(tb_dir)), default=0)
        if now_seen > seen:
            step_time = (time.monotonic() - t_seen) / (now_seen - seen)
            seen, t_seen = now_seen, time.monotonic()
        if seen >= target:
            return step_time
        time.sleep(poll)


def _kill_at_random_step(cmd, workdir, run_dir, rng, max_steps, timeout, poll):
    """Starts the first run and SIGKILLs it at a random step after its first checkpoint; returns
    that first checkpoint's number."""
    proc = _start(cmd, os.path.join(workdir, "killed"))
    try:
        deadline = time.monotonic() + timeout  # one timeout for the whole first run
        first = _wait_for_checkpoint(proc, os.path.join(run_dir, "checkpoints"), workdir, deadline, timeout, poll)
        target = rng.randint(first + 1, max_steps - 3)  # a step after the first checkpoint
        jitter = rng.random()  # extra fraction of a step, so kills land anywhere in a step
        step_time = _wait_for_step(proc, os.path.join(run_dir, "tb"), first, target, deadline, timeout, poll)
        time.sleep(jitter * (step_time or 0.2))
    finally:
        _kill_group(proc)
    return first


def _rerun(cmd, workdir, run_dir, max_steps, timeout):
    """Reruns ``cmd`` to completion; returns the problems with its results.json and export."""
    proc = _start(cmd, os.path.join(workdir, "rerun"))
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TryFailed(f"the rerun did not finish within {timeout:.0f} s") from None
    finally:
        _kill_group(proc)
    if code != 0:
        raise TryFailed(f"the rerun exited with code {code}: {_tail(os.path.join(workdir, 'rerun.err'))}")
    try:
        with open(os.path.join(run_dir, "results.json")) as f:
            results = json.load(f)
    except (OSError, ValueError) as err:
        raise TryFailed(f"no readable results.json after the rerun ({err})") from None
    problems = []
    if results.get("step") != max_steps:
        problems.append(f"results.json step is {results.get('step')}, not {max_steps}")
    export = resolve_record_path(str(results.get("export")), ROOT)  # the rerun ran in ROOT
    if not os.path.isfile(os.path.join(export, "saved_model.pb")):
        problems.append(f"no SavedModel at the export {results.get('export')}")
    return problems


def _kill_and_resume(workdir, rng, max_steps, checkpoint_every, timeout, poll, result):
    run_dir = os.path.join(workdir, "run")
    ckpt_dir, tb_dir = os.path.join(run_dir, "checkpoints"), os.path.join(run_dir, "tb")
    cmd = train_command(run_dir, max_steps, checkpoint_every)
    problems = result["problems"]
    # 1. the first run, killed at a random step after its first checkpoint; the state it left.
    # On a loaded machine the run can reach its last step before the kill lands (the event file
    # that the kill watches is flushed late): that run was not interrupted, so start it again.
    for _ in range(3):
        first = _kill_at_random_step(cmd, workdir, run_dir, rng, max_steps, timeout, poll)
        killed_files = event_files(tb_dir)
        killed_steps = loss_steps(killed_files)
        kill_step = result["kill_step"] = max(killed_steps, default=0)
        if kill_step < max_steps:
            break
        shutil.rmtree(run_dir)
    else:
        raise TryFailed(f"three first runs reached step {max_steps} before the kill")
    n = result["checkpoint"] = last_checkpoint(ckpt_dir)
    if n is None:
        raise TryFailed("the checkpoint file vanished after the kill")
    if n < first:
        problems.append(f"checkpoint went back from {first} to {n}")
    if kill_step - n > checkpoint_every:
        problems.append(f"lost {kill_step - n} steps (killed at {kill_step}, checkpoint {n}) "
                        f"> --checkpoint_every={checkpoint_every}")
    # 2. the SAME command again, to completion; it resumed from the step before its first log
    problems.extend(_rerun(cmd, workdir, run_dir, max_steps, timeout))
    rerun_steps = loss_steps([f for f in event_files(tb_dir) if f not in killed_files])
    result["resumed"] = rerun_steps[0] - 1 if rerun_steps else None
    if result["resumed"] != n:
        problems.append(f"resumed from step {result['resumed']}, not from the last checkpoint {n}")
    problems.extend(judge_curve(killed_steps, rerun_steps, n, kill_step, max_steps))


def run_try(workdir, rng, max_steps=40, checkpoint_every=5, timeout=600.0, poll=0.1):
    """One kill/resume try in ``workdir`` (emptied first). Returns a dict with ``held`` (bool),
    ``kill_step`` (last step logged by the killed run), ``checkpoint`` (N, the last checkpoint
    before the kill), ``resumed`` (the step the rerun resumed from), ``problems`` (list of str)."""
    if max_steps < checkpoint_every + 3:
        raise ValueError("max_steps must leave room for a kill after the first checkpoint")
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    result = dict(held=False, kill_step=None, checkpoint=None, resumed=None, problems=[], seconds=None)
    t_start = time.monotonic()
    try:
        _kill_and_resume(workdir, rng, max_steps, checkpoint_every, timeout, poll, result)
        result["held"] = not result["problems"]
    except TryFailed as err:
        result["problems"].append(str(err))
    finally:
        result["seconds"] = round(time.monotonic() - t_start, 1)
    return result


def format_try(i, res):
    verdict = "held" if res["held"] else "FAILED: " + "; ".join(res["problems"])
    return (f"try {i}: killed at step {res['kill_step']}, last checkpoint {res['checkpoint']}, "
            f"resumed from step {res['resumed']} ({res['seconds']} s): {verdict}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="crashtest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tries", type=int, default=10, help="kill/resume tries (default 10)")
    parser.add_argument("--workdir", default=None, help="where the runs go (default: a temporary dir)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill points")
    parser.add_argument("--keep", action="store_true", help="keep the run directories")
    parser.add_argument("--max_steps", type=int, default=40, help="steps of each run (default 40)")
    parser.add_argument("--checkpoint_every", type=int, default=5, help="checkpoint interval (default 5)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds allowed per run (default 600)")
    args = parser.parse_args(argv)
    if args.tries < 1:
        parser.error(f"--tries={args.tries}: must be positive")
    if args.checkpoint_every < 1 or args.max_steps < args.checkpoint_every + 3:
        parser.error(f"--max_steps={args.max_steps}: needs --checkpoint_every ≥ 1 and "
                     "max_steps ≥ checkpoint_every + 3")
    base = args.workdir or tempfile.mkdtemp(prefix="hsl-crashtest-")
    try:
        os.makedirs(base, exist_ok=True)
    except OSError as err:
        parser.error(f"--workdir={base}: {err.strerror}")
    rng = random.Random(args.seed)
    held = 0
    t0 = time.monotonic()
    try:
        for i in range(1, args.tries + 1):
            workdir = os.path.join(base, f"try-{i}")
            res = run_try(workdir, rng, args.max_steps, args.checkpoint_every, args.timeout)
            held += res["held"]
            print(format_try(i, res), flush=True)
            if not args.keep and res["held"]:
                shutil.rmtree(workdir, ignore_errors=True)
    except KeyboardInterrupt:
        print("crashtest: interrupted", file=sys.stderr)
        return 130
    finally:
        if not args.keep and not args.workdir and held == args.tries:
            shutil.rmtree(base, ignore_errors=True)
    print(f"{held}/{args.tries} tries held ({time.monotonic() - t0:.0f} s)"
          + ("" if held == args.tries or args.keep else f"; failed tries kept in {base}"))
    return 0 if held == args.tries else 1


if __name__ == "__main__":
    sys.exit(main())
