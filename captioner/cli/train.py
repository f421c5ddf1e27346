"""captioner train --config CONFIG.yaml [section.option=value ...] [--resume] [--force]"""

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="YAML config (see configs/)")
    parser.add_argument("overrides", nargs="*", metavar="section.option=value", help="e.g. trainer.max_epochs=5 model.hidden_dim=256")
    parser.add_argument("--resume", action="store_true", help="continue from OUT_DIR/checkpoints/last.ckpt")
    parser.add_argument("--force", action="store_true", help="start over in an OUT_DIR that holds an earlier run")


def run(args: argparse.Namespace) -> int:
    from captioner.config import load_config
    from captioner.training.runner import train

    config = load_config(args.config, args.overrides)
    result = train(config, resume=args.resume, force=args.force)
    scores = ", ".join(f"{k}={v:.4f}" for k, v in sorted(result.metrics.items()) if k.startswith(("val/", "best_")))
    print(f"trained {result.global_step} steps; model written to {result.model_path}" + (f" ({scores})" if scores else ""))
    return 0
