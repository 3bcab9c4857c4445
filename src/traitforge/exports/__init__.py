"""Exports: preferences into pairs, pairs into Hugging Face datasets with a card."""

from traitforge.exports.exporter import ExportReport, build_pairs, export_dataset

__all__ = ["ExportReport", "build_pairs", "export_dataset"]
