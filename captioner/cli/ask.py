"""captioner ask IMAGE "how many people are in the picture?" [--checkpoint PATH] [--top-k 5] [--attention FILE.png] [--caption]"""

import argparse

from captioner.cli.caption import positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", help="image file")
    parser.add_argument("question", help="the question, quoted")
    parser.add_argument("--checkpoint", help="VQA model file from `captioner train` with a vqa config "
                                             "(default: the shipped real-photo answerer, trained on coco-mini)")
    parser.add_argument("--top-k", type=positive_int, default=5, help="how many answers to print (default 5)")
    parser.add_argument("--attention", metavar="FILE.png", help="write the question's attention figure (one panel per glimpse)")
    parser.add_argument("--caption", action="store_true",
                        help="also caption the image with the shipped caption model (from the same encoder pass when both read the same grid)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")


def run(args: argparse.Namespace) -> int:
    from captioner.data.images import load_image
    from captioner.errors import CaptionerError
    from captioner.vqa_inference import VQAAnswerer

    if not args.question.strip():
        raise CaptionerError("the question is empty")
    image = load_image(args.image)  # a bad image is a one-line error (exit 1) before the model loads
    answerer = VQAAnswerer.load(args.checkpoint, device=args.device)
    answerer.check_question(args.question)
    if args.caption:
        from captioner.inference import Captioner
        from captioner.pipeline import describe, share_encoder

        captioner = Captioner.load(device=args.device)
        try:
            share_encoder(captioner, answerer)  # one encoder in memory, one pass over the image
        except CaptionerError:  # the models read different grids (e.g. a VQA model of your own): one pass each
            caption, result = captioner.caption([image])[0], answerer.ask(image, args.question, top_k=args.top_k)
        else:
            described = describe(captioner, answerer, [image], [args.question], top_k=args.top_k)[0]
            caption, result = described.caption, described.answers[0]
        print(f"caption: {caption.text}")
    else:
        result = answerer.ask(image, args.question, top_k=args.top_k)
    for answer, probability in result.answers:
        print(f"{answer}\t{probability:.3f}")
    if args.attention:
        from captioner.visualize import question_attention_figure

        question_attention_figure(image, args.question, result.answers, result.alphas, answerer.grid_size, args.attention)
    return 0
