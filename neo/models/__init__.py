"""Pure PyTorch models (no Lightning): RT-DETR and Faster R-CNN builders."""
