"""Random sentences from a word list: challenge texts nobody can have cached.

Templates keep the sentences grammatical (speech models and translators do badly on word
salad, which would measure the template rather than the miner); the words are common
English ones that every English voice and recogniser knows. With 60+ words per slot and
several slots a sentence, a repeat is vanishingly rare.
"""
from __future__ import annotations

import random

ADJECTIVES = (
    "small big old young green red blue yellow quiet loud happy tired brave clever gentle quick slow warm "
    "cold bright dark heavy light tall short soft sharp busy empty full early late clean strong calm"
).split()
NOUNS = (
    "dog cat horse bird farmer teacher doctor child river mountain garden window table market city village "
    "station train boat letter story song house road forest field kitchen school bridge island storm morning "
    "evening winter summer baker sailor painter lamp basket door"
).split()
VERBS = (
    "found carried watched painted cleaned opened closed visited followed helped answered crossed built "
    "moved reached fixed washed called pushed pulled lifted dropped counted wanted needed"
).split()
PLACES = (
    "near the river|behind the house|across the field|under the bridge|before the storm|after the market|"
    "inside the station|along the road|beside the window|over the hill|at the school|in the garden"
).split("|")
ADVERBS = "slowly quickly quietly carefully happily early again together gently suddenly".split()
NUMBERS = "two three four five six seven eight nine ten twelve twenty".split()

_TEMPLATES = (
    "the {adj} {noun} {verb} the {adj2} {noun2} {place}",
    "a {adj} {noun} {verb} {number} {noun2}s {place}",
    "the {noun} {verb} the {noun2} {adverb} {place}",
    "every {adj} {noun} {verb} a {adj2} {noun2}",
    "{number} {adj} {noun}s {verb} the {noun2} {adverb}",
)


def random_sentence(rng: random.Random) -> str:
    """One sentence, capitalised and ending with a full stop."""
    template = rng.choice(_TEMPLATES)
    text = template.format(
        adj=rng.choice(ADJECTIVES), adj2=rng.choice(ADJECTIVES), noun=rng.choice(NOUNS), noun2=rng.choice(NOUNS),
        verb=rng.choice(VERBS), place=rng.choice(PLACES), adverb=rng.choice(ADVERBS), number=rng.choice(NUMBERS),
    )
    return text[0].upper() + text[1:] + "."


def random_text(rng: random.Random, sentences: int = 2) -> str:
    """A few sentences."""
    return " ".join(random_sentence(rng) for _ in range(sentences))


def random_words(rng: random.Random, count: int) -> str:
    """Words with no grammar (what a garbage miner might send)."""
    pool = ADJECTIVES + NOUNS + VERBS + ADVERBS
    return " ".join(rng.choice(pool) for _ in range(count))
