"""Small data transforms."""
import numpy as np
from mmcv.transforms import BaseTransform

from decssl_mm.registry import TRANSFORMS


@TRANSFORMS.register_module()
class GrayToRGB(BaseTransform):
    """Repeat a single-channel image to three channels.

    Required keys: ``img``. Modified keys: ``img`` (``H x W x 3``), and
    ``img_shape`` / ``ori_shape`` are set when absent (images that come from
    memory rather than from ``LoadImageFromFile``).
    """

    def transform(self, results: dict) -> dict:
        img = results['img']
        if img.ndim == 2:
            img = img[..., None]
        if img.shape[-1] == 1:
            img = np.repeat(img, 3, axis=-1)
        results['img'] = np.ascontiguousarray(img)
        results.setdefault('img_shape', img.shape[:2])
        results.setdefault('ori_shape', img.shape[:2])
        return results
