"""MaskContrast folder grouping (seed paper 002): group an unlabelled folder's pixels.

Mask proposals per image -> a pixel embedding head trained with MaskContrast's losses -> mini-batch
K-means over the whole folder -> one group map per image, groups a person can name once.
"""

from training.grouping.config import NO_GROUP, GroupConfig
from training.grouping.edits import merge_groups, name_group, split_group
from training.grouping.job import GroupingError, group_folder
from training.grouping.store import (
    GroupInfo,
    GroupingResult,
    export_groups,
    load_group_map,
    load_grouping,
)

__all__ = [
    "NO_GROUP",
    "GroupConfig",
    "GroupInfo",
    "GroupingError",
    "GroupingResult",
    "export_groups",
    "group_folder",
    "load_group_map",
    "load_grouping",
    "merge_groups",
    "name_group",
    "split_group",
]
