import pkg from "../package.json" with { type: "json" };

export const GOTEL_VERSION: string = pkg.version;
