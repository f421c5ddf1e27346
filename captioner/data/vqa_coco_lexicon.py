"""The words the COCO-QA-style question generator recognises in captions: canonical answer → the caption words
(or word sequences) that state it. Plurals of the last word are matched too ("buses", "giraffes", "knives")."""

COLORS: dict[str, tuple[str, ...]] = {
    "white": ("white",), "black": ("black",), "red": ("red",), "blue": ("blue",), "green": ("green",),
    "yellow": ("yellow",), "brown": ("brown",), "orange": ("orange",), "pink": ("pink",), "purple": ("purple",),
    "gray": ("gray", "grey"), "silver": ("silver",),
}

# things a photo can contain (people excluded: they are counted from boxes); the keys are the answers
OBJECTS: dict[str, tuple[str, ...]] = {
    "bus": ("bus", "double decker bus", "double-decker bus"), "car": ("car",), "truck": ("truck", "pickup truck"),
    "train": ("train", "locomotive"), "motorcycle": ("motorcycle", "motorbike", "motor bike"),
    "bike": ("bike", "bicycle"), "airplane": ("airplane", "plane", "jet", "airliner", "aeroplane"), "boat": ("boat",),
    "traffic light": ("traffic light", "stop light"), "fire hydrant": ("fire hydrant", "hydrant"),
    "stop sign": ("stop sign",), "bench": ("bench",), "clock": ("clock",), "umbrella": ("umbrella",), "kite": ("kite",),
    "dog": ("dog", "puppy"), "cat": ("cat", "kitten"), "horse": ("horse",), "sheep": ("sheep", "lamb"),
    "cow": ("cow", "cattle", "bull", "calf"), "elephant": ("elephant",), "bear": ("bear",), "zebra": ("zebra",),
    "giraffe": ("giraffe",), "bird": ("bird", "seagull", "pigeon", "duck"),
    "frisbee": ("frisbee",), "skateboard": ("skateboard",), "surfboard": ("surfboard", "surf board"),
    "skis": ("skis",), "snowboard": ("snowboard",), "racket": ("racket", "racquet", "tennis racket", "tennis racquet"),
    "bat": ("bat", "baseball bat"), "bottle": ("bottle",), "cup": ("cup", "mug"), "fork": ("fork",),
    "knife": ("knife",), "bowl": ("bowl",), "plate": ("plate",), "banana": ("banana",), "apple": ("apple",),
    "sandwich": ("sandwich",), "broccoli": ("broccoli",), "carrot": ("carrot",), "hot dog": ("hot dog", "hotdog"),
    "pizza": ("pizza",), "donut": ("donut", "doughnut"), "cake": ("cake",), "chair": ("chair",),
    "couch": ("couch", "sofa"), "bed": ("bed",), "table": ("table",), "toilet": ("toilet",), "sink": ("sink",),
    "refrigerator": ("refrigerator", "fridge"), "oven": ("oven", "stove"), "microwave": ("microwave",),
    "tv": ("tv", "television"), "laptop": ("laptop",), "computer": ("computer",), "keyboard": ("keyboard",),
    "remote": ("remote", "remote control", "controller", "wii remote", "wii controller", "game controller"),
    "phone": ("phone", "cell phone", "cellphone", "smartphone"), "book": ("book",), "vase": ("vase",),
    "teddy bear": ("teddy bear", "stuffed animal"), "scissors": ("scissors",), "suitcase": ("suitcase", "luggage"),
    "backpack": ("backpack",), "tie": ("tie", "necktie"), "shirt": ("shirt", "t-shirt"), "jacket": ("jacket", "coat"),
    "hat": ("hat", "cap"), "dress": ("dress",), "helmet": ("helmet",), "wave": ("wave",),
}
PLURAL_OBJECTS = {"skis", "scissors"}  # asked as "are there skis in the picture?"

PEOPLE: dict[str, tuple[str, ...]] = {
    "man": ("man", "guy", "gentleman"), "woman": ("woman", "lady"), "boy": ("boy",), "girl": ("girl",),
    "child": ("child", "kid", "toddler", "baby"),
    "person": ("person", "player", "skier", "surfer", "snowboarder", "skateboarder", "skater", "batter", "rider"),
}

SPORTS: dict[str, tuple[str, ...]] = {
    "tennis": ("tennis",), "baseball": ("baseball", "softball"), "soccer": ("soccer",), "frisbee": ("frisbee",),
    "football": ("football",), "basketball": ("basketball",), "volleyball": ("volleyball",), "golf": ("golf",),
    "skiing": ("skiing", "ski", "skis", "skier", "skiers"), "snowboarding": ("snowboarding", "snowboard", "snowboarder"),
    "surfing": ("surfing", "surf", "surfer", "surfboard", "surf board"),
    "skateboarding": ("skateboarding", "skateboard", "skateboarder", "skate board"),
}

ANIMALS = ("dog", "cat", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "bird")
FOODS = ("banana", "apple", "sandwich", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake")
ROOMS: dict[str, tuple[str, ...]] = {
    "kitchen": ("kitchen",), "bathroom": ("bathroom", "restroom"), "bedroom": ("bedroom",),
    "living room": ("living room", "family room"), "dining room": ("dining room",), "office": ("office",),
}
HELD = ("racket", "bat", "umbrella", "frisbee", "kite", "phone", "remote", "surfboard", "skateboard", "snowboard", "skis",
        "banana", "sandwich", "hot dog", "pizza", "donut", "cake", "cup", "bottle", "knife", "book", "teddy bear", "dog", "cat")
RIDDEN = ("horse", "bike", "motorcycle", "skateboard", "surfboard", "wave", "elephant", "snowboard", "skis", "boat")
