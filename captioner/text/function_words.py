"""English function words: the words a caption may use as often as it needs ("a", "of", "on", "two", "side").

Every other word of a vocabulary is a content word, which a caption rarely needs twice: 5.8 % of coco-mini's
training captions repeat one ("a man holding a tennis racket on a tennis court"), against 16 % of the captions
of the model shipped before content-word blocking ("a bus is parked on the side of a bus"); see docs/RESULTS.md.
The list is fixed by hand (articles, prepositions, conjunctions, pronouns, auxiliaries, quantifiers, and the
relational nouns of captions' spatial phrases: "side", "front", "top", "back"), not learnt from any data.
"""

FUNCTION_WORDS = frozenset("""
a an the this that these those some any each every other another
of with and or but nor in on at to from by for into onto over under near next beside behind above below between
through across along around up down out off about against while as than then there here
it its he she they them his her their him we us our you your i me my
is are was were be been being has have had do does did can could will would may might must shall should
not no very too so just also only which who whom whose what where when why how
one two three four five several many few more most much all both either neither
top front side back
""".split())


def is_content_word(word: str) -> bool:
    """A caption word that is not a function word (special tokens aside: the vocabulary leaves those out)."""
    return word not in FUNCTION_WORDS
