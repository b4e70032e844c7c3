// Preloaded by bunfig.toml: lets gotel run from source and in `bun test` with the host's build/ outputs.
import { assetsPlugin, type Arch } from "./assets-plugin.ts";

Bun.plugin(assetsPlugin(process.arch as Arch, false));
