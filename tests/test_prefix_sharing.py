"""Planning which prompts reuse which anchor's key/value cache (src/medsyn/backends/prefix_sharing.py)."""

from __future__ import annotations

import pytest

from medsyn.eval.backends.prefix_sharing import common_prefix, identity_sequence, plan_prefix_sharing


def test_different_images_never_count_as_a_shared_prefix() -> None:
    image = 0
    a = identity_sequence([5, image, image, 6], image, [1], [2])
    b = identity_sequence([5, image, image, 6], image, [2], [2])  # same tokens, another image
    c = identity_sequence([5, image, image, 7], image, [1], [2])
    assert common_prefix(a, b) == 1
    assert common_prefix(a, c) == 3


def test_an_image_in_several_runs_is_one_image() -> None:
    image, row_break = 0, 4
    ids = [5, image, image, row_break, image, image, 6, image]  # a 2×2 image in two rows, then a 1-token image
    split = identity_sequence(ids, image, [1, 2], [4, 1])
    first, second = 1 << 20, 2 << 20
    assert split.tolist() == [5, -(1 + first), -(2 + first), row_break, -(3 + first), -(4 + first), 6, -(1 + second)]
    assert common_prefix(split, identity_sequence(ids, image, [1, 3], [4, 1])) == 7  # both runs of the first image shared
    assert common_prefix(split, identity_sequence(ids, image, [3, 2], [4, 1])) == 1  # another first image: nothing


def test_image_count_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="3 placeholder tokens in all, but 2 in the prompt"):
        identity_sequence([5, 0, 0, 6], 0, [1, 2], [2, 1])
    with pytest.raises(ValueError, match="1 placeholder tokens in all, but 2 in the prompt"):
        identity_sequence([5, 0, 4, 0, 6], 0, [1], [1])
    with pytest.raises(ValueError, match="but 0 in the prompt"):
        identity_sequence([5, 6], 0, [1], [1])
    with pytest.raises(ValueError, match="2 image codes but 1 placeholder counts"):
        identity_sequence([5, 0, 6], 0, [1, 2], [1])


def test_anchor_shares_most_and_every_member_keeps_its_last_token() -> None:
    full = [1, 2, 3, 4, 5, 6]
    absent_late = [1, 2, 3, 4, 5, 9]
    absent_early = [1, 2, 8, 9]
    prefix_of_full = [1, 2, 3]  # entirely shared: its last token is still computed
    anchors, members = plan_prefix_sharing([absent_early, full, absent_late, prefix_of_full], ["c"] * 4)
    assert anchors == [1]
    assert members == [(0, 1, 2), (2, 1, 5), (3, 1, 2)]


def test_groups_never_share() -> None:
    anchors, members = plan_prefix_sharing([[1, 2, 3], [1, 2, 3], [1, 2, 4]], ["a", "b", "b"])
    assert anchors == [0, 1]
    assert members == [(2, 1, 2)]
