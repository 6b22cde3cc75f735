"""The default categories: a name (folder), a human title and CLIP text prompts."""

from __future__ import annotations

from photosorter.records import Category

# Folders the library reserves for itself; a category may not use these names.
RESERVED = frozenset({"_unsure", "_failed", "_duplicates"})

DEFAULT_CATEGORIES: tuple[Category, ...] = (
    Category("screenshot", "Screenshots", ("a screenshot of a phone app", "a screenshot of a web page")),
    Category("me", "Photos of me", ("a selfie", "a photo of me")),
    Category("people", "People", ("a photo of people", "a photo of a person", "a group photo")),
    Category("animal", "Animals", ("a photo of an animal", "a photo of a pet", "a photo of a bird")),
    Category("scenery", "Scenery", ("a photo of a landscape", "a photo of nature", "a photo of a city view")),
    Category("book", "Books", ("a photo of a book", "a photo of a bookshelf", "a book cover")),
    Category("text", "Text", ("a photo of a document", "a photo of a receipt", "a photo of a sign with text")),
    Category("food", "Food", ("a photo of food", "a photo of a meal", "a photo of a drink")),
    Category("myfitnesspal", "MyFitnessPal", ("a screenshot of the MyFitnessPal app", "a food diary screenshot")),
    Category("beer", "Beer", ("a photo of a beer can", "a photo of a beer")),
    Category("indoors", "Indoors", ("a photo of a room", "a photo of an interior", "a photo inside a shop")),
    Category("other", "Other", ("a photo of an object", "a photo")),
)

FALLBACK = "other"
