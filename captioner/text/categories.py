"""Which caption words name which COCO category: person words and the singular, plural and common synonyms of
all 80 COCO object categories, in one table.

`word_categories(words)` reads a tokenized caption and returns each word's category (or None). Two-word names
("hot dog", "teddy bear", "tennis racket") win over their parts, and both words of the phrase get the
category. Words that are too ambiguous in captions are left out on purpose: "orange" (mostly a colour; "oranges"
is in), "glass"/"glasses" (drinks or spectacles), "pitcher" (player or jug), "couple"/"family"/"team" (quantities
and groups of anything), "computer", "desk", "bag", "board", "ski", pronouns.
"""

from collections.abc import Collection, Sequence

PERSON_WORDS = """
    person persons people man men woman women guy guys lady ladies gentleman gentlemen boy boys girl girls
    child children kid kids baby babies toddler toddlers adult adults teenager teenagers teen teens someone somebody
    player players skier skiers surfer surfers skateboarder skateboarders snowboarder snowboarders rider riders
    biker bikers cyclist cyclists batter batters catcher catchers umpire umpires athlete athletes
    crowd spectators tourist tourists pedestrian pedestrians passenger passengers driver drivers
    chef chefs worker workers officer officers policeman policemen soldier soldiers student students
    friend friends mother father mom dad son daughter brother sister wife husband bride groom cowboy vendor
"""

# COCO category → the caption words that name it (singular and plural written out, so the table is greppable)
CATEGORY_WORDS: dict[str, str] = {
    "person": PERSON_WORDS,
    "bicycle": "bicycle bicycles bike bikes",
    "car": "car cars taxi taxis suv suvs",
    "motorcycle": "motorcycle motorcycles motorbike motorbikes moped mopeds scooter scooters",
    "airplane": "airplane airplanes plane planes aeroplane aeroplanes jet jets airliner airliners aircraft",
    "bus": "bus buses busses",
    "train": "train trains locomotive locomotives",
    "truck": "truck trucks",
    "boat": "boat boats ship ships sailboat sailboats canoe canoes kayak kayaks yacht yachts",
    "traffic light": "stoplight stoplights",
    "fire hydrant": "hydrant hydrants",
    "stop sign": "",
    "parking meter": "",
    "bench": "bench benches",
    "bird": "bird birds pigeon pigeons seagull seagulls gull gulls duck ducks goose geese parrot parrots swan swans owl owls",
    "cat": "cat cats kitten kittens kitty",
    "dog": "dog dogs puppy puppies",
    "horse": "horse horses pony ponies",
    "sheep": "sheep lamb lambs",
    "cow": "cow cows cattle bull bulls calf calves ox oxen",
    "elephant": "elephant elephants",
    "bear": "bear bears",
    "zebra": "zebra zebras",
    "giraffe": "giraffe giraffes",
    "backpack": "backpack backpacks",
    "umbrella": "umbrella umbrellas parasol parasols",
    "handbag": "handbag handbags purse purses",
    "tie": "tie ties necktie neckties",
    "suitcase": "suitcase suitcases luggage",
    "frisbee": "frisbee frisbees",
    "skis": "skis",
    "snowboard": "snowboard snowboards",
    "sports ball": "ball balls",
    "kite": "kite kites",
    "baseball bat": "bat bats",
    "baseball glove": "glove gloves mitt mitts",
    "skateboard": "skateboard skateboards",
    "surfboard": "surfboard surfboards",
    "tennis racket": "racket rackets racquet racquets",
    "bottle": "bottle bottles",
    "wine glass": "",
    "cup": "cup cups mug mugs",
    "fork": "fork forks",
    "knife": "knife knives",
    "spoon": "spoon spoons",
    "bowl": "bowl bowls",
    "banana": "banana bananas",
    "apple": "apple apples",
    "sandwich": "sandwich sandwiches",
    "orange": "oranges",
    "broccoli": "broccoli",
    "carrot": "carrot carrots",
    "hot dog": "hotdog hotdogs",
    "pizza": "pizza pizzas",
    "donut": "donut donuts doughnut doughnuts",
    "cake": "cake cakes cupcake cupcakes",
    "chair": "chair chairs",
    "couch": "couch couches sofa sofas",
    "potted plant": "plant plants houseplant houseplants",
    "bed": "bed beds",
    "dining table": "table tables",
    "toilet": "toilet toilets",
    "tv": "tv tvs television televisions monitor monitors",
    "laptop": "laptop laptops",
    "mouse": "mouse",
    "remote": "remote remotes controller controllers",
    "keyboard": "keyboard keyboards",
    "cell phone": "phone phones cellphone cellphones smartphone smartphones",
    "microwave": "microwave microwaves",
    "oven": "oven ovens stove stoves",
    "toaster": "toaster toasters",
    "sink": "sink sinks",
    "refrigerator": "refrigerator refrigerators fridge fridges",
    "book": "book books",
    "clock": "clock clocks",
    "vase": "vase vases",
    "scissors": "scissors",
    "teddy bear": "teddy teddies",
    "hair drier": "hairdryer hairdryers",
    "toothbrush": "toothbrush toothbrushes",
}

# two-word names: they win over what their words would name alone ("hot dog" is not a dog)
PHRASES: dict[tuple[str, str], str] = {
    **{("traffic", w): "traffic light" for w in ("light", "lights")},
    **{("fire", w): "fire hydrant" for w in ("hydrant", "hydrants")},
    **{("stop", w): "stop sign" for w in ("sign", "signs")},
    **{("parking", w): "parking meter" for w in ("meter", "meters")},
    **{("dirt", w): "motorcycle" for w in ("bike", "bikes")},
    **{("tennis", w): "tennis racket" for w in ("racket", "rackets", "racquet", "racquets")},
    **{("baseball", w): "baseball bat" for w in ("bat", "bats")},
    **{("baseball", w): "baseball glove" for w in ("glove", "gloves", "mitt", "mitts")},
    **{(s, w): "sports ball" for s in ("tennis", "soccer", "foot", "base", "basket") for w in ("ball", "balls")},
    **{("wine", w): "wine glass" for w in ("glass", "glasses")},
    **{("cell", w): "cell phone" for w in ("phone", "phones")},
    **{("dining", w): "dining table" for w in ("table", "tables")},
    **{("potted", w): "potted plant" for w in ("plant", "plants")},
    **{("hot", w): "hot dog" for w in ("dog", "dogs")},
    **{("teddy", w): "teddy bear" for w in ("bear", "bears")},
    **{("stuffed", w): "teddy bear" for w in ("animal", "animals", "bear", "bears")},
    **{("hair", w): "hair drier" for w in ("drier", "driers", "dryer", "dryers")},
    **{("blow", w): "hair drier" for w in ("drier", "dryer")},
}

WORD_CATEGORY: dict[str, str] = {word: category for category, words in CATEGORY_WORDS.items() for word in words.split()}


def _bare(word: str) -> str:
    """'man's' → 'man', "players'" → 'players': possessives name the same thing."""
    return word[:-2] if word.endswith("'s") else word.rstrip("'")


def word_categories(words: Sequence[str], names: Collection[str] = ()) -> list[str | None]:
    """The category each word of a tokenized caption names, or None. `names`: categories of a boxes file that
    are not COCO's (e.g. the shapes set's "circle"), matched by the word itself or its plural in -s/-es."""
    bare = [_bare(w) for w in words]
    found: list[str | None] = [WORD_CATEGORY.get(w) for w in bare]
    for i, pair in enumerate(zip(bare, bare[1:])):
        if pair in PHRASES:
            found[i] = found[i + 1] = PHRASES[pair]
    extra = {n: n for n in names if n not in CATEGORY_WORDS}
    extra.update({f"{n}s": n for n in list(extra)} | {f"{n}es": n for n in list(extra)})
    return [category or extra.get(word) for category, word in zip(found, bare)]
