"""`ServedModel`: an exported SavedModel loaded with TensorFlow alone, as a server would."""

import numpy as np
import tensorflow as tf

from kerazoo.export.saved_model import ExportError


class ServedModel:
    """The `serving_default` signature of a kerazoo SavedModel, with what it expects.

    Attributes:
        path: the SavedModel directory.
        image_shape: `(H, W, C)` of the uint8 images the signature takes.
        class_names: the model's output names (from the SavedModel's
            `class_names` collection; "0", "1", ... for exports without one).
    """

    def __init__(self, path):
        try:
            self._loaded = tf.saved_model.load(path)  # keeps the signature's variables alive
        except (OSError, ValueError) as error:
            reason = (str(error).strip() or type(error).__name__).splitlines()[0]
            raise ExportError(f"not a SavedModel: {path} ({reason})") from None
        if "serving_default" not in self._loaded.signatures:
            raise ExportError(f"SavedModel has no serving_default signature: {path}")
        self.path = path
        self._serve = self._loaded.signatures["serving_default"]
        spec = self._serve.structured_input_signature[1].get("images")
        if spec is None or spec.dtype != tf.uint8 or spec.shape.rank != 4:
            raise ExportError(f"serving_default does not take uint8 images [N, H, W, C]: {path}")
        self.image_shape = tuple(spec.shape[1:])
        num_classes = self._serve.structured_outputs["probabilities"].shape[-1]
        names = getattr(self._loaded, "class_names", None)
        self.class_names = (tuple(n.decode() for n in names[0].numpy()) if names
                            else tuple(str(i) for i in range(num_classes)))

    def probabilities(self, images, batch_size=256):
        """uint8 `[N, H, W, C]` -> float32 `[N, num_classes]`, `batch_size` images a call."""
        images = np.asarray(images, np.uint8)
        out = [self._serve(images=tf.constant(images[i:i + batch_size]))["probabilities"].numpy()
               for i in range(0, len(images), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, len(self.class_names)), np.float32)
