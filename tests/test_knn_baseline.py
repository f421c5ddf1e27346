import numpy as np

from captioner.evaluation.knn_baseline import consensus_caption, knn_captions, nearest_neighbours


def test_nearest_neighbours_are_ranked_by_cosine_similarity():
    database = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert nearest_neighbours(np.array([[1.0, 0.1]]), database, k=2).tolist() == [[0, 2]]


def test_consensus_picks_the_caption_the_others_agree_with():
    candidates = ["a dog on grass", "a dog runs on the grass", "a cat", "the dog on the grass"]
    assert consensus_caption(candidates) == "a dog runs on the grass"


def test_knn_captions_retrieve_from_the_closest_training_image():
    train = np.eye(3)
    captions = [["a red circle"], ["a blue square"], ["a green triangle"]]
    assert knn_captions(np.array([[0.1, 0.9, 0.0]]), train, captions, k=1) == ["a blue square"]
