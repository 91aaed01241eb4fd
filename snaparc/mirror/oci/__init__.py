"""OCI registries as archive homes: a `.dlmsnap` pushed as a ModelPack
artifact (one raw layer per file) and rebuilt byte for byte (spec/OCI.md).

- `url`: `oci://HOST[:PORT]/REPO:TAG` and `…@sha256:DIGEST`;
- `client`: the distribution API over HTTP (standard library only);
- `layout`: pure: the artifact an archive implies, and the OCI record;
- `frames`: frames rebuilt from raw bytes as the packer writes them;
- `push`, `pull`: the two directions;
- `resume`: what a killed pull, unpack or materialize leaves for the next run;
- `signatures`: OMS bundles as referrers of the artifact;
- `listing`, `sessions`: `mirror ls`, and chunked uploads across runs.
"""
