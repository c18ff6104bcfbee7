"""Planning which prompts reuse which anchor's key/value cache (src/medsyn/backends/prefix_sharing.py)."""

from __future__ import annotations

import pytest

from medsyn.eval.backends.prefix_sharing import common_prefix, identity_sequence, plan_prefix_sharing


def test_different_images_never_count_as_a_shared_prefix() -> None:
    image = 0
    a = identity_sequence([5, image, image, 6], image, [1])
    b = identity_sequence([5, image, image, 6], image, [2])  # same tokens, another image
    c = identity_sequence([5, image, image, 7], image, [1])
    assert common_prefix(a, b) == 1
    assert common_prefix(a, c) == 3


def test_image_count_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="2 images but 1 runs"):
        identity_sequence([5, 0, 0, 6], 0, [1, 2])
    with pytest.raises(ValueError, match="no image placeholder"):
        identity_sequence([5, 6], 0, [1])


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
