"""`mote-rag export MODEL OUT`: one ONNX graph per task path, for serving with the torch-free OnnxEncoder."""

from __future__ import annotations

DESCRIPTION = (
    "Export a saved MoTE model (or a dense checkpoint, or 'base' for the embedded MiniLM) to ONNX: one graph per "
    "task path holding only that task's expert (pooling and L2 normalisation inside), tokenizer.json and "
    "manifest.json with the sha256 of every file. Serve it with `mote_rag.OnnxEncoder(OUT)`, which needs no torch."
)


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="export per-task ONNX graphs", description=DESCRIPTION)
    p.add_argument("model", help="saved MoTE model directory, dense checkpoint directory, or 'base'")
    p.add_argument("out", help="output folder (created; an existing export there is replaced)")
    p.add_argument(
        "--tasks", default=None, help="comma-separated task names or aliases to export (default: every task)"
    )
    p.add_argument(
        "--optimize", action="store_true", help="also write offline-optimised fp32 graphs (variant 'optimized')"
    )
    p.add_argument("--quantize", action="store_true", help="also write int8 dynamic-quantised graphs (variant 'int8')")
    p.add_argument(
        "--calibration-texts",
        default=None,
        metavar="FILE",
        help="with --quantize: a text file, one text per line, whose activations set the int8 smoothing "
        "scales (default: a fixed sample shipped with mote-rag)",
    )
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default: the exporter's pinned opset, 18)")
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime-vs-torch check of each graph")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    _check_source_model(args.model)
    tasks = _parse_tasks(args)
    if args.opset is not None and not 14 <= args.opset <= 23:
        raise _bad_input(f"--opset {args.opset} is outside the supported range 14..23")
    calibration = _read_calibration(args)
    out = Path(args.out)
    _check_out_folder(out)

    from mote_rag.loading import load_encoder

    model = load_encoder(args.model)
    if tasks:
        for t in tasks:
            model.tasks.get(t)  # ValueError listing valid tasks -> exit 2
    model.export_onnx(
        out,
        tasks=tasks,
        optimize=args.optimize,
        quantize=args.quantize,
        opset=args.opset,
        check=not args.no_check,
        calibration_texts=calibration,
    )
    from mote_rag.runtime.manifest import Manifest

    manifest = Manifest.read(out).spec
    print(
        f"exported {len(manifest.tasks)} task(s) to {out} (variants: {', '.join(manifest.variants)}; "
        f"fingerprint {manifest.fingerprint})"
    )
    for task, entry in manifest.tasks.items():
        print(f"  {task:<18} {'  '.join(entry['graphs'].values())}")
    return 0


def _bad_input(msg: str) -> Exception:
    from mote_rag.cli.main import BadInput

    return BadInput(msg)


def _check_source_model(model: str) -> None:
    """A saved MoTE model or dense checkpoint (not an ONNX export)."""
    from mote_rag.loading import EMBEDDED, encoder_kind

    if model not in EMBEDDED:
        try:
            kind = encoder_kind(model)
        except (FileNotFoundError, NotADirectoryError, ValueError) as exc:
            raise _bad_input(str(exc)) from None
        if kind == "onnx":
            raise _bad_input(f"{model} is already an ONNX export; pass a saved MoTE model or a dense checkpoint")


def _parse_tasks(args) -> list[str] | None:
    from mote_rag.cli.main import option_list

    return option_list(args.tasks, "--tasks")


def _read_calibration(args) -> list[str] | None:
    """The --calibration-texts lines (non-blank), or None."""
    from pathlib import Path

    if args.calibration_texts is None:
        return None
    if not args.quantize:
        raise _bad_input("--calibration-texts only applies with --quantize")
    from mote_rag.cli.main import input_file

    source = Path(input_file(args.calibration_texts, "--calibration-texts", "a text file, one text per line"))
    calibration = [line.strip() for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not calibration:
        raise _bad_input(f"calibration file {source} holds no text")
    return calibration


def _check_out_folder(out) -> None:
    if out.exists() and not out.is_dir():
        raise _bad_input(f"{out} is a file; the export writes a folder")
    from mote_rag.atomic import check_writable_folder

    try:
        check_writable_folder(out, "export folder")
    except OSError as exc:
        raise _bad_input(str(exc)) from None
