import { render } from "preact";
import "./styles.css";
import { App } from "./components/App";
import { locale } from "./i18n";
import { boot } from "./store";
import { applyTheme } from "./theme";

applyTheme();
document.documentElement.lang = locale.value;
render(<App />, document.getElementById("app")!);
void boot();
