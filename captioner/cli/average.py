"""captioner average OUT.pt IN.pt IN.pt [...] [--recipe TEXT] [--force]"""

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", help="the averaged model file to write")
    parser.add_argument("inputs", nargs="+", metavar="model.pt", help="two or more model files fine-tuned from one start")
    parser.add_argument("--recipe", help="how the inputs were made, stored in OUT's metadata")
    parser.add_argument("--force", action="store_true", help="overwrite OUT if it exists")


def run(args: argparse.Namespace) -> int:
    from captioner.soup import save_soup

    path = save_soup(args.out, args.inputs, recipe=args.recipe, force=args.force)
    print(f"averaged {len(args.inputs)} model files into {path}")
    return 0
