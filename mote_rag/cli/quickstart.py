"""`mote-rag quickstart`: the whole product on the shipped sample, in minutes on a laptop CPU."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "quickstart",
        help="upcycle, train, evaluate, export, index and search on the shipped sample",
        description="Upcycle the embedded all-MiniLM-L6-v2 into MoTE, train it with TA-CL on the MedQuAD sample "
        "shipped with mote-rag, evaluate base vs trained on a held-out slice, export one ONNX graph per task path, "
        "build a FAISS index of the sample corpus and answer example queries. A second run reuses what exists.",
    )
    p.add_argument("--out", default="mote-rag-quickstart", help="output folder (default: ./mote-rag-quickstart)")
    p.add_argument("--steps", type=int, default=None, help="training steps (default: the recipe's 60)")
    p.add_argument(
        "--onnx",
        choices=("all", "retrieval"),
        default="all",
        help="task paths to export: every one (default), or only search_query and search_document, which the "
        "index and the example queries read",
    )
    p.add_argument(
        "--no-int8",
        action="store_true",
        help="export no int8 graphs (the index and the example queries use the fused fp32 graphs either way)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=run)


def run(args) -> int:
    from .main import BadInput, output_folder

    if args.steps is not None and args.steps < 1:
        raise BadInput(f"--steps must be a positive integer, got {args.steps}")
    from ..quickstart import RETRIEVAL_PATHS, run_quickstart

    output_folder(args.out, "--out")
    run_quickstart(
        args.out,
        steps=args.steps,
        show_progress=not args.no_progress,
        onnx_tasks=RETRIEVAL_PATHS if args.onnx == "retrieval" else None,
        int8=not args.no_int8,
    )
    return 0
