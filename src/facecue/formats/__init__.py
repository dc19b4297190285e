"""Readers and writers of the data sets: FER2013, Kaggle facial keypoints, 68-point landmarks."""
