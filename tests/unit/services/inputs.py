"""The bytes, facts and limits the service tests feed the fakes."""

from imagetag.domain.images import ImageFacts
from tests.fakes import PNG_MAGIC

MAX_BYTES = 1000
PNG = PNG_MAGIC + b"a dog on a bus"
FACTS = ImageFacts("image/png", 640, 480)
PHOTO_URL = "https://x.org/a/my_dog-photo.jpg?x=1"
