"""kerazoo: a Keras 3 model zoo built on hand-written layers.

Importing the package registers every layer and model class with Keras's
serialization registry (package "kerazoo"), so a `.keras` file written by a
kerazoo model loads with plain `keras.saving.load_model` after `import kerazoo`.
"""

__version__ = "0.1.0"

from kerazoo import layers  # noqa: F401  (registers the serializable layers)
from kerazoo import models  # noqa: F401  (registers the model zoo)
