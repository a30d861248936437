"""The bot's thanks under a marketplace review."""

import pytest

from bots.reviews import review_reply


@pytest.mark.parametrize("stars", [4, 5])
def test_a_good_review_is_thanked_by_name_and_names_the_product(stars):
    text = review_reply(rating=stars, customer_name="Марина", product_name="Икра кеты 100 г", seed="r-1")

    assert text.startswith("Марина, ")
    assert "«Икра кеты 100 г»" in text


def test_a_middling_review_is_thanked_and_its_remarks_taken_note_of():
    text = review_reply(rating=3, customer_name="", seed="r-2")

    assert "замечан" in text or "учтём" in text
    assert "понравилась" not in text


def test_reviews_of_one_product_are_not_all_answered_alike():
    answers = {review_reply(rating=5, seed=f"review:{n}") for n in range(30)}

    assert len(answers) > 1


def test_a_name_that_is_not_a_word_is_left_out():
    assert review_reply(rating=5, customer_name="user_12345", seed="x")[0].isupper()
