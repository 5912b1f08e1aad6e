"""Make ``ui/data/distritos.geojson``, the front end's map of Madrid's 21 districts, from the
Ayuntamiento de Madrid's district outlines (UTM, EPSG:23030; where to get them is in
``ui/data/LICENSE-distritos.md``).

The outlines are reprojected to longitude/latitude, simplified as one coverage (shared
borders stay shared, so no gaps or overlaps appear between districts), rounded to 5
decimals (about a metre) and given each district's official name and a point inside it
for its label, so the front end needs nothing but ``json`` to draw them. A one-off tool:
shapely and pyproj are not dependencies of the project.

    uv run --with shapely --with pyproj python -m tools.distritos SOURCE.geojson
"""

import importlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).resolve().parents[1] / "ui" / "data" / "distritos.geojson"
SOURCE_CRS = "EPSG:23030"  # ED50 / UTM zone 30N, as the Ayuntamiento's file says
TOLERANCE_M = 20.0  # finer than a street's width at the zoom a district fills the map
DECIMALS = 5
# The official names by district code (the source's are shortened or unaccented).
NAMES = {
    "01": "Centro", "02": "Arganzuela", "03": "Retiro", "04": "Salamanca",
    "05": "Chamartín", "06": "Tetuán", "07": "Chamberí", "08": "Fuencarral-El Pardo",
    "09": "Moncloa-Aravaca", "10": "Latina", "11": "Carabanchel", "12": "Usera",
    "13": "Puente de Vallecas", "14": "Moratalaz", "15": "Ciudad Lineal", "16": "Hortaleza",
    "17": "Villaverde", "18": "Villa de Vallecas", "19": "Vicálvaro",
    "20": "San Blas-Canillejas", "21": "Barajas",
}  # fmt: skip


def build(source: dict[str, Any]) -> dict[str, Any]:
    """The simplified, reprojected, named FeatureCollection."""
    shapely = importlib.import_module("shapely")
    geometry = importlib.import_module("shapely.geometry")
    pyproj = importlib.import_module("pyproj")

    transformer = pyproj.Transformer.from_crs(SOURCE_CRS, "EPSG:4326", always_xy=True)

    def to_wgs84(xy: Any) -> Any:
        lon, lat = transformer.transform(xy[:, 0], xy[:, 1])
        return list(zip(lon, lat, strict=True))

    codes = [str(f["properties"]["cod_distri"]).zfill(2) for f in source["features"]]
    shapes = [geometry.shape(f["geometry"]) for f in source["features"]]
    simplified = shapely.coverage_simplify(shapes, TOLERANCE_M)
    features = []
    for code, shape in sorted(zip(codes, simplified, strict=True)):
        lonlat = shapely.transform(shape, to_wgs84)
        label = lonlat.representative_point()
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "codigo": code,
                    "nombre": NAMES[code],
                    "etiqueta": [round(label.y, DECIMALS), round(label.x, DECIMALS)],
                },
                "geometry": _rounded(geometry.mapping(lonlat)),
            }
        )
    return {"type": "FeatureCollection", "features": features}


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, DECIMALS)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


def main(argv: list[str]) -> None:
    """Read the source named in ``argv``, write ``OUTPUT`` atomically."""
    (source,) = argv
    text = json.dumps(build(json.loads(Path(source).read_text())), ensure_ascii=False)
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=OUTPUT.parent, suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text + "\n")
    os.replace(temporary, OUTPUT)
    print(f"{OUTPUT}: {len(text.encode()) // 1024} KB")


if __name__ == "__main__":
    main(sys.argv[1:])
