"""The word → COCO category table."""

import pytest

from captioner.text import tokenize
from captioner.text.categories import CATEGORY_WORDS, PHRASES, word_categories

COCO_80 = """person bicycle car motorcycle airplane bus train truck boat traffic_light fire_hydrant stop_sign parking_meter
bench bird cat dog horse sheep cow elephant bear zebra giraffe backpack umbrella handbag tie suitcase frisbee skis
snowboard sports_ball kite baseball_bat baseball_glove skateboard surfboard tennis_racket bottle wine_glass cup fork
knife spoon bowl banana apple sandwich orange broccoli carrot hot_dog pizza donut cake chair couch potted_plant bed
dining_table toilet tv laptop mouse remote keyboard cell_phone microwave oven toaster sink refrigerator book clock vase
scissors teddy_bear hair_drier toothbrush"""
COCO_80 = [name.replace("_", " ") for name in COCO_80.split()]


def categories(caption: str) -> list[str | None]:
    return word_categories(tokenize(caption))


def test_every_coco_category_is_named_by_some_word_or_phrase():
    assert len(COCO_80) == 80 and sorted(CATEGORY_WORDS) == sorted(COCO_80)
    named = {c for c, words in CATEGORY_WORDS.items() if words.split()} | set(PHRASES.values())
    assert named == set(COCO_80)
    assert set(PHRASES.values()) <= set(COCO_80)


@pytest.mark.parametrize("word", ["man", "men", "woman", "women", "people", "person", "boy", "girl", "child", "kids",
                                  "player", "skier", "surfer", "skateboarder", "rider", "crowd"])
def test_person_words(word):
    assert word_categories([word]) == ["person"]


def test_singulars_plurals_and_synonyms():
    assert categories("two dogs and a puppy") == [None, "dog", None, None, "dog"]
    assert categories("a sofa next to a couch")[1::4] == ["couch", "couch"]
    assert categories("planes parked near a jet")[::4] == ["airplane", "airplane"]
    assert categories("a fridge in the kitchen")[1] == "refrigerator"
    assert categories("the man's bike") == [None, "person", "bicycle"]  # possessives name the same thing


def test_two_word_names_win_over_their_parts():
    assert categories("a hot dog with mustard")[:3] == [None, "hot dog", "hot dog"]
    assert categories("a teddy bear and a bear") == [None, "teddy bear", "teddy bear", None, None, "bear"]
    assert categories("a man holding a tennis racket")[-2:] == ["tennis racket", "tennis racket"]
    assert categories("a red stop sign")[2:] == ["stop sign", "stop sign"]
    assert categories("a tennis court")[1:] == [None, None]  # "tennis" alone names nothing


def test_ambiguous_words_name_nothing():
    assert categories("an orange cat wearing glasses") == [None, None, "cat", None, None]
    assert categories("a couple of oranges") == [None, None, None, "orange"]


def test_categories_of_other_datasets_match_by_name():
    shapes = ["circle", "square", "triangle"]
    assert word_categories(["a", "red", "circle", "and", "two", "squares"], shapes) == [None, None, "circle", None, None, "square"]
    assert word_categories(["circle"]) == [None]  # not a COCO word
