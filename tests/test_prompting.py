import random

import pytest

from reelforge.prompting import PromptRewriter, canonical_caption, colour_name, named_factors, world_colour
from reelforge.world.captions import caption
from reelforge.world.factors import COLORS
from reelforge.world.splits import sample_train_factors


@pytest.fixture(scope="module")
def rewriter(text_encoder):
    return PromptRewriter(text_encoder)


def test_the_world_colours_map_to_themselves():
    for name, rgb in COLORS.items():
        assert world_colour(tuple(c / 255 for c in rgb)) == name


@pytest.mark.parametrize("words, colour", [
    ("crimson", "red"), ("ruby", "red"), ("amber", "orange"), ("lemon", "yellow"), ("jade", "green"),
    ("navy", "blue"), ("azure", "blue"), ("lilac", "purple"), ("ivory", "white"), ("charcoal", "black"),
    ("silver", "gray"), ("grey", "gray"), ("pitch-black", "black"), ("blood red", "red"), ("light blue", "blue"), ("sky-blue", "blue"),
])
def test_colour_words_people_use_land_on_the_world_colour_of_their_hue(words, colour):
    assert colour_name(words.split()) == colour


def test_words_that_are_not_colours_are_not_read_as_colours():
    for words in ("ball", "moves", "the", "a small", "red ball"):
        assert colour_name(words.split()) is None


def test_grammar_captions_come_back_unchanged(rewriter):
    rng = random.Random(3)
    for _ in range(60):
        text = caption(sample_train_factors(rng, 0.15), rng)
        result = rewriter(text)
        assert result.revised == text and result.changes == []


@pytest.mark.parametrize("prompt, wanted, unwanted", [
    ("A crimson sphere moves left on a blue background", ["red circle moves left"], ["crimson"]),
    ("A navy box bounces against lemon", ["blue square bounces", "on a yellow background"], ["navy", "lemon"]),
    ("A pitch-black star spins on a starry night", ["black star", "at night"], ["starry night"]),
    ("An amber ring rises slowly on a chessboard", ["orange ring", "on a checkerboard"], ["amber", "chessboard"]),
    ("A huge jade triangle grows, the camera panning to the left", ["green triangle", "pans left"], ["jade"]),
])
def test_wordings_the_grammar_never_used_become_its_words(rewriter, prompt, wanted, unwanted):
    revised = rewriter(prompt).revised.lower()
    for words in wanted:
        assert words in revised, (prompt, revised)
    for words in unwanted:
        assert words not in revised, (prompt, revised)


def test_a_negated_phrase_is_not_rewritten_into_its_opposite(rewriter):
    revised = rewriter("A red ball does not move on a blue background").revised
    assert revised == "A red circle stays still on a blue background"  # not moving is staying still
    revised = rewriter("A mint wedge doesn't budge on a crimson backdrop").revised
    assert revised == "A green triangle stays still on a red background"
    revised = rewriter("A red ball does not move left on a blue background").revised
    assert "not move left" in revised and "stays still" not in revised  # it may move some other way


@pytest.mark.parametrize("prompt, revised", [
    ("A lavender doughnut enlarges against a lemon backdrop", "A purple ring grows on a yellow background"),
    ("An amber slab diminishes against a mint wall", "An orange square shrinks on a green background"),
    ("A crimson annulus shrinks against a lemon wall", "A red ring shrinks on a yellow background"),
    ("A huge amber disk rotates on a navy backdrop", "A large orange circle spins on a blue background"),
    ("A lemon tile expands against a charcoal wall", "A yellow square grows on a black background"),  # kinds of
])
def test_words_the_grammar_never_used_are_looked_up_in_the_dictionary(rewriter, prompt, revised):
    assert rewriter(prompt).revised == revised


def test_only_the_objects_own_noun_and_verb_are_looked_up(rewriter):
    # "a cat" has a dictionary entry, but nothing in it reads as a shape of this world.
    assert rewriter("a cat").revised == "a cat"
    # "loop" after the verb is about the motion, not the object: the object's noun is "donut".
    assert rewriter("A small green donut quickly goes round in a loop at dusk").revised.startswith("A small green ring")


def test_a_prompt_in_the_grammars_words_is_said_the_grammars_way():
    assert canonical_caption("a large red square stays still set against solid green") == \
        "a large red square stays still on a green background"
    assert canonical_caption("a red ball moves left quickly under a blue sky") == "a red circle moves left quickly under a blue sky"
    assert canonical_caption("a red ball moves left with a blue and green wall") is None  # which colour is the wall?
    assert canonical_caption("a red ball on a blue background") is None  # no motion named: nothing to say it by
    assert canonical_caption("With a plain blue wall behind it, a red ball moves left") == \
        "a red circle moves left on a blue background"  # the wall may come first
    # What the factors cannot say is not said away: a negation, a second object, a two-coloured object.
    for prompt in ("a red ball never rises on a blue background", "a red ball rises, not quickly",
                   "a red ball rises and a blue dog sits", "a red and blue ball rises", "two red balls rise"):
        assert canonical_caption(prompt) is None, prompt


def test_negations_are_read_however_they_are_typed(rewriter):
    for prompt in ("A mint wedge didn\u2019t budge on a crimson backdrop", "A mint wedge didn't budge on a crimson backdrop"):
        assert rewriter(prompt).revised == "A green triangle stays still on a red background", prompt
    # Rising is a way of moving, but "does not rise" says nothing of staying still.
    assert "stays still" not in rewriter("A mint wedge does not climb on a crimson backdrop").revised
    assert "stays still" not in rewriter("A mint wedge does not move to the left on a crimson backdrop").revised


def test_prompts_in_the_models_words_with_other_glue_pass_unchanged(rewriter):
    for prompt in ("a red ball rolls left across a blue floor",  # a coloured floor is a plain background
                   "a red ball bounces off the floor on a blue background",
                   "a tiny red ball and a large blue box on a gray background"):  # "large" is a size, not "grows larger"
        assert rewriter(prompt).revised == prompt


def test_prompts_outside_the_world_pass_through(rewriter):
    for prompt in ("a cat", "", "   "):
        assert rewriter(prompt).revised == prompt


def test_the_pipeline_records_the_revised_prompt_and_can_skip_it(tiny_pipeline):
    out = tiny_pipeline("a scarlet ball", seconds=1.0, seed=0, steps=2)
    assert out.settings["prompt"] == "a scarlet ball" and out.settings["revised_prompt"] == "a red ball"
    same = tiny_pipeline("a red ball", seconds=1.0, seed=0, steps=2)
    assert "revised_prompt" not in same.settings
    assert (out.frames == same.frames).all()  # the model saw the same words
    raw = tiny_pipeline("a scarlet ball", seconds=1.0, seed=0, steps=2, rewrite_prompt=False)
    assert "revised_prompt" not in raw.settings and not (raw.frames == same.frames).all()


def test_every_grammar_caption_names_its_objects_factors():
    rng = random.Random(5)
    for _ in range(400):
        factors = sample_train_factors(rng, two_object_prob=0.2)
        named = named_factors(caption(factors, rng))
        if len(factors.objects) > 1:
            assert named == {}  # which object a colour or a shape belongs to is not this function's to guess
            continue
        obj = factors.objects[0]
        assert {k: named[k] for k in ("color", "shape", "motion", "background")} == {
            "color": obj.color, "shape": obj.shape, "motion": obj.motion, "background": factors.background}
        assert named.get("speed", obj.speed) == obj.speed and named.get("size", obj.size) == obj.size
        assert named.get("camera", "still") == factors.camera
        if obj.motion != "static":
            assert "speed" in named  # every moving object's caption says how fast


def test_the_objects_colour_is_the_one_in_its_own_noun_phrase():
    assert named_factors("a red ball rolls left across a blue floor") == {"color": "red", "shape": "circle",
                                                                          "motion": "left"}
    assert named_factors("a big red ball bounces near a green tree")["color"] == "red"
    assert "color" not in named_factors("a ball rolls left across a green field")  # the field is green
    assert named_factors("two red balls bounce on a blue background") == {}  # several objects


def test_prompts_outside_the_world_name_nothing():
    assert named_factors("a cat sleeps on a sofa") == {}
    assert named_factors("a red ball and a blue square") == {}
