package io.quantcal.kernels.easyquant;

/** Which scale a candidate block varies; the other side's scale is held fixed. */
public enum SearchSide { WEIGHT, ACTIVATION }
