"""A media library at scale: every video of a folder, glob or manifest through the face
pipeline (and, when asked, the captions), on all cores or on a Ray cluster, into Parquet
tables, caption files and timeline pictures (``facecue batch``; docs/scale.md).

Needs ``facecue[scale]`` (pyarrow, pandas, matplotlib; Ray for ``ray=``).
"""

from facecue.batch.inputs import find_videos
from facecue.batch.runner import BatchReport, run_batch
from facecue.batch.table import to_dataframe
from facecue.batch.video import Job, Settings, process_video

__all__ = ["BatchReport", "Job", "Settings", "find_videos", "process_video", "run_batch",
           "to_dataframe"]
