"""`predict_images`: top-k classes of image files from an exported SavedModel."""

import dataclasses
import json

import numpy as np
from PIL import Image, UnidentifiedImageError

from kerazoo.export.saved_model import ExportError
from kerazoo.export.serving import ServedModel

# PIL mode of a model input with that many channels.
_MODES = {1: "L", 3: "RGB"}


class ImageError(ValueError):
    """One image file could not be read; the message is one line naming the file."""


@dataclasses.dataclass(frozen=True)
class PredictConfig:
    """saved_model: export directory; images: file paths; top_k: classes per image."""

    saved_model: str
    images: tuple = ()
    top_k: int = 3


def read_image(path, image_shape):
    """A PNG/JPEG/... file as uint8 `(H, W, C)` for a model taking `image_shape`.

    Any size and colour mode: converted to grey or RGB by the model's channel
    count, resized (bilinear, PIL) to the model's native H x W.
    """
    height, width, channels = image_shape
    if channels not in _MODES:
        raise ExportError(f"the model takes {channels}-channel images; only 1 (grey) or 3 "
                          "(RGB) can be read from files")
    try:
        with Image.open(path) as image:
            image = image.convert(_MODES[channels])
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a directory, not an image") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image PIL can read (PNG, JPEG, ...)") from None
    except OSError as error:  # truncated or corrupt image data
        raise ImageError(f"{path}: unreadable image ({error})") from None
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(image, np.uint8).reshape(height, width, channels)


def predict_images(config):
    """Top-k predictions for each file of `config.images`, in order.

    Returns:
        One dict per file: `{"file", "top_k": [{"class_id", "class_name",
        "probability"}, ...]}` (most probable first), or `{"file", "error"}`
        for a file that could not be read; the others are still answered.

    Raises:
        ExportError: the SavedModel cannot be served, or top_k < 1.
    """
    if config.top_k < 1:
        raise ExportError(f"top_k must be >= 1. Received: top_k={config.top_k}")
    served = ServedModel(config.saved_model)
    results, images = [], []
    for path in config.images:
        try:
            images.append(read_image(path, served.image_shape))
            results.append({"file": path})
        except ImageError as error:
            results.append({"file": path, "error": str(error)})
    probabilities = iter(served.probabilities(np.stack(images)) if images else [])
    for result in results:
        if "error" not in result:
            p = next(probabilities)
            top = np.argsort(-p, kind="stable")[:config.top_k]
            result["top_k"] = [{"class_id": int(i), "class_name": served.class_names[i],
                                "probability": float(p[i])} for i in top]
    return results


def format_text(result):
    """One line: `file: name 0.912, name 0.050, ...` (or the error)."""
    if "error" in result:
        return result["error"]
    return f"{result['file']}: " + ", ".join(
        f"{c['class_name']} {c['probability']:.3f}" for c in result["top_k"])


def format_json(config, results):
    """The one JSON document of `--json`."""
    return json.dumps({"saved_model": config.saved_model, "top_k": config.top_k,
                       "predictions": results}, indent=2)
