"""Share a trained task model as a Hugging Face Hub repository: config.py, model.safetensors and
a README.md model card (task, backbone, training data, metrics, command, licence).

Examples::

    pe-dense push configs/det/mask_rcnn_pe_spatial_t_shapes_cpu.py \\
        work_dirs/mask_rcnn_pe_spatial_t_shapes_cpu/iter_800.pth me/pe-t-shapes-det
    pe-dense push CONFIG CKPT me/my-model --local my-model/   # write the folder, no upload

The checkpoint is loaded strictly into the config's model first. The metrics come from the
metrics.json that ``pe-dense test CONFIG CKPT`` writes next to the checkpoint (or --metrics).
Then: ``pe-dense predict hf://me/my-model photos/ --out preds/``, ``pe-dense demo --web --from
hf://me/my-model``, ``Predictor.from_pretrained("me/my-model")``. Uploading needs a login
(``hf auth login`` or HF_TOKEN); without a network, write the folder with --local and upload it
later with ``hf upload REPO_ID DIR``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="mmengine config the model was trained with")
    parser.add_argument("checkpoint", help="checkpoint written by pe-dense train")
    parser.add_argument("repo_id", help="hub repository, OWNER/NAME (created when missing)")
    parser.add_argument("--local", metavar="DIR", help="write the repository folder to DIR and "
                        "stop (no network: a dry run, or upload DIR later)")
    parser.add_argument("--metrics", help="metrics.json for the card (default: the one next "
                        "to the checkpoint, when it was measured on this checkpoint)")
    parser.add_argument("--command", dest="train_command", metavar="TEXT",
                        help="the command that trained the model, for the card "
                        "(e.g. 'pe-dense train configs/det/x.py')")
    parser.add_argument("--license", default="apache-2.0", help="licence of the weights "
                        "(hub licence id; default %(default)s)")
    parser.add_argument("--private", action="store_true", help="create a private repository")
    parser.add_argument("--message", help="commit message of the upload")
    parser.add_argument("--cfg-options", nargs="+", default=None, metavar="KEY=VALUE",
                        help="config overrides, as for pe-dense test")


def run(args: argparse.Namespace) -> int:
    from pe_dense.engine.hub import push_to_hub, save_run, temporary_folder
    from pe_dense.utils.hub import parse_hf_spec

    parse_hf_spec(args.repo_id)
    for what in ("config", "checkpoint"):
        if not Path(getattr(args, what)).exists():
            raise FileNotFoundError(f"{what} {getattr(args, what)} does not exist")
    if args.metrics and not Path(args.metrics).is_file():
        raise FileNotFoundError(f"--metrics {args.metrics} does not exist")
    folder = Path(args.local) if args.local else temporary_folder()
    save_run(args.config, args.checkpoint, folder, cfg_options=args.cfg_options,
             metrics=args.metrics, command=args.train_command, license=args.license,
             repo_id=args.repo_id)
    files = ", ".join(f"{p.name} ({p.stat().st_size / 1e6:.1f} MB)"
                      for p in sorted(folder.iterdir()) if p.is_file())
    print(f"model repository written to {folder}: {files}")
    if args.local:
        print(f"not uploaded (--local); upload it with: hf upload {args.repo_id} {folder}")
        print(f"use it here: pe-dense predict {folder} IMAGES --out preds/")
        return 0
    url = push_to_hub(folder, args.repo_id, private=args.private or None, message=args.message)
    print(f"pushed to {url}")
    print(f"use it: pe-dense predict hf://{args.repo_id} IMAGES --out preds/")
    return 0
