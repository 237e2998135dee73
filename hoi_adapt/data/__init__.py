"""Datasets (synthetic world and real datasets), the common sample schema, augmentation and data modules."""
