"""Item pipelines, in the order they run.

1. :class:`~scraping.pipelines.gate.QuotaGatePipeline` holds an item until its
   label has a free download slot (or drops it once the label is full).
2. :class:`~scraping.pipelines.images.LabelledImagesPipeline` (an
   ImagesPipeline) downloads, checks, dedupes and stores the image.
3. :class:`~scraping.pipelines.record.ManifestPipeline` writes the decision to
   the manifest and frees the slot.
"""
