"""`textgen sweep`: start a sweep, watch its table of trials, read it, cancel it.

    textgen sweep CORPUS --set model.units=64,128 --set training.learning_rate=log:1e-3:3e-2
    textgen sweep status SWEEP | textgen sweep cancel SWEEP
"""

from pathlib import Path

from client.cli_io import client, emit, note, num, table
from client.commands import EXIT_FAILED, EXIT_OK, _corpus_of, _spec_value, spec_sections
from client.errors import ClientError
from client.records import SweepStatus

RANGE_KINDS = {"log": True, "range": False}  # --set FIELD=log:LOW:HIGH, FIELD=range:LOW:HIGH


def sweep(args):
    api = client(args)
    action, *rest = args.target
    if action in ("status", "cancel"):
        if len(rest) != 1:
            raise ClientError(f"textgen sweep {action} SWEEP: give one sweep id")
        record = api.cancel_sweep(rest[0]) if action == "cancel" else api.sweep_status(rest[0])
        emit(args, record, sweep_lines(record))
        return EXIT_OK
    if rest:
        raise ClientError("textgen sweep CORPUS: one file or corpus id")
    source = Path(action)
    if source.is_file():
        corpus_id = _corpus_of(api, source)["id"]
    elif action.startswith("cor_"):
        corpus_id = action
    else:
        raise ClientError(f"{action}: no such file, and not a corpus id (cor_...)")
    if not args.set:
        raise ClientError("give the fields to sweep: --set model.units=64,128 "
                          "--set training.learning_rate=log:1e-3:3e-2")
    record = api.sweep(corpus_id, dict(_space_entry(item) for item in args.set),
                       trial_seconds=args.trial_seconds, trials=args.trials,
                       budget_seconds=args.budget_seconds,
                       final_fraction=args.final_fraction, parallel=args.parallel,
                       preset=args.preset, **spec_sections(args.base))
    if not args.follow:
        emit(args, record, record["id"])
        return EXIT_OK
    note(f"sweep {record['id']}: {record['max_trials']} trials of {args.trial_seconds:g} s")
    return follow_sweep(api, record, args)


def _space_entry(item):
    """--set FIELD=VALUES: `a,b,c` a choice; `log:LOW:HIGH` or `range:LOW:HIGH` a range."""
    name, sep, values = item.partition("=")
    if not sep or name.count(".") != 1 or not values:
        raise ClientError(f"--set {item}: expected SECTION.FIELD=VALUES, such as "
                          "model.units=64,128 or training.learning_rate=log:1e-3:3e-2")
    kind, _, bounds = values.partition(":")
    if kind in RANGE_KINDS:
        low, sep, high = bounds.partition(":")
        if not sep:
            raise ClientError(f"--set {item}: a range is {kind}:LOW:HIGH")
        return name, {"low": _spec_value(low), "high": _spec_value(high),
                      "log": RANGE_KINDS[kind]}
    return name, [_spec_value(value) for value in values.split(",")]


def follow_sweep(api, record, args):
    """Print the table each time a trial moves (an event of the sweep's stream: a trial
    started, reported an epoch, was pruned or ended), until the sweep ends."""
    shown = None

    def show(record):
        nonlocal shown
        lines = sweep_lines(record)
        if lines != shown and not args.json:
            print("\n".join(lines) + "\n", flush=True)
            shown = lines

    show(record)
    for _event in api.stream_sweep_events(record["id"]):
        record = api.sweep_status(record["id"])
        show(record)
    if record["status"] == SweepStatus.RUNNING:  # it ended before the stream was opened
        record = api.sweep_status(record["id"])
        show(record)
    if args.json:
        emit(args, record, "")
    return EXIT_OK if record["status"] == SweepStatus.SUCCEEDED and record["best"] \
        else EXIT_FAILED


def sweep_lines(record):
    """The sweep's state, its table of trials and its best trial."""
    lines = [f"sweep {record['id']} {record['status']}: {record['trials_made']} of "
             f"{record['max_trials']} trials made"]
    lines += table(["#", "status", "rung", "best val_loss", "job", "settings"], [
        [trial["number"], trial["status"], trial["rung"], num(trial["best_val_loss"], ".4f"),
         trial["job_id"], _settings(trial["params"])] for trial in record.get("trials", [])])
    final = record.get("final")
    if final:
        lines.append(f"final: trial {final['number']} continued for "
                     f"{final['max_seconds']:.0f} s, {final['status']}, val_loss "
                     f"{num(final['val_loss'], '.4f') or '-'}, job {final['job_id']}")
    best = record["best"]
    if best:
        which = f"trial {best['number']}" + (" continued" if best.get("final") else "")
        lines.append(f"best: {which}, val_loss {best['val_loss']:.4f}, "
                     f"model {best['model_id']} ({_settings(best['params'])})")
    return lines


def _settings(params):
    return " ".join(f"{name}={value:.4g}" if isinstance(value, float) else f"{name}={value}"
                    for name, value in params.items())
