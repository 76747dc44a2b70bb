// Preact with htm: tagged templates instead of JSX, so the browser loads the modules as they are.
import { h, render, Fragment, createContext } from "preact";
import htm from "htm";

export const html = htm.bind(h);
export { render, Fragment, createContext };
