"""Map products made from lale class maps: areas by zone and change between two dates.

- :mod:`lale.maps.classmap`: opening a class map (names, colours, grid) with one-line errors;
- :mod:`lale.maps.zonal`: area of every class in every zone of a polygon layer (exactextract);
- :mod:`lale.maps.change`: transition matrix and change raster of two maps, by blocks;
- :mod:`lale.maps.figures`: the bar charts, the transition heat-map and the change legend;
- :mod:`lale.maps.staging`: outputs that all appear at once, or none.
"""
